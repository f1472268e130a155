"""Built-in model families. Each subpackage holds a plugin.toml and lazily imported code."""
