//! Events emitted by the core and the renderers that print them (plain lines for now).
