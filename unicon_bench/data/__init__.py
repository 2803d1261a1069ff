"""Data sources: synthetic CT/PET phantoms and loaders."""
