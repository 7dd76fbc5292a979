"""Processing layer: parse, template-mine, enrich, aggregate and commit spool batches to the lake."""
