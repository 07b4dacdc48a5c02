"""Where files go: the Store interface (base), its typed errors, one folder per provider, and the registry
of their records (registry). This file imports nothing, so that no submodule depends on its siblings through it."""
