-- Runs once, when the postgres volume is created: predictions live apart from Airflow's metadata.
CREATE DATABASE driftline;
