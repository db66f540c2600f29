"""Above the domains: the round that `serve` and `worker` run, and reports that read every domain."""
