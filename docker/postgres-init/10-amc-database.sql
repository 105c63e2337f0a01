-- Runs once, when the postgres volume is initialised: a separate database for the AMC execution
-- table (the provider creates the table itself), next to Airflow's metadata database.
CREATE DATABASE amc OWNER airflow;
