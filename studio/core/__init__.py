"""The studio's core: plugins, parameters, jobs, projects, media. No Qt in here."""
