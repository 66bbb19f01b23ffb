"""One module per CLI command. Each exposes ``command``, a click command whose body only
parses options, calls one function of the core, and prints what it returns."""
