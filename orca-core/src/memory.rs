//! An in-memory Store for tests, examples and engine benchmarks (not durable).
