"""What every run needs, whatever it trains: the shared run skeleton (`skeleton`), run
directories and their files (`rundir`), atomic writes and the JSON convention (`files`), errors
and exit statuses (`errors`), seeding, meters and training state (`training`), data-parallel
runs (`distributed`) and the optional W&B mirror (`wandb_logger`). Imports no application
module."""
