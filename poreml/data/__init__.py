"""Data stage: the declared column vocabulary, validation, file I/O and dataset curation."""
