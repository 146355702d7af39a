"""Fast episode execution: batching across threads and episodes, inference backends."""
