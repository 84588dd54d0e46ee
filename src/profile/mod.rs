//! Board and build profiles: model, loading with source locations, validation, merging.
