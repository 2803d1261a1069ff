"""Built-in scenario definitions (one versioned YAML file each)."""
