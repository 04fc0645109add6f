"""The shipped rendition profiles and channel sets (TOML package data)."""
