"""The desktop shell: widgets that wrap core objects and listen to them. No model logic here."""
