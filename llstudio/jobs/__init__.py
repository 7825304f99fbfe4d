"""Scale: many scenes at once (``--jobs``), one film in segments (``--split``), scene batches on a Slurm cluster
(``llstudio submit``). Every job runs the same pipeline a single render runs; this package only decides where and
with what share of the machine, and reports the outcome of each job in one table."""
