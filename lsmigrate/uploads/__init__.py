"""moved: re-export until merge (the stores now live in lsmigrate.stores)."""
