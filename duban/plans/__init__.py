"""A plan's definitions in and out of the database: ``importer`` (validate a file, then sync in one
transaction), ``sync`` (apply a resolved plan in place and say what changed), ``export`` (read a plan
back as a ``PlanFile``)."""
