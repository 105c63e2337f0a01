-- The AMC emulator's demo workflow (airflow_provider_amc.emulator.defaults.DEMO_WORKFLOW_SQL).
-- Declared parameter: min_impressions (LONG, default 0); see dags/amc_daily_report.py.
SELECT campaign, event_date, SUM(impressions) AS impressions, SUM(spend) AS spend, MAX(event_ts) AS last_seen
FROM dsp_impressions
WHERE event_ts >= BUILT_IN_PARAMETER('TIME_WINDOW_START')
  AND event_ts < BUILT_IN_PARAMETER('TIME_WINDOW_END')
GROUP BY campaign, event_date
HAVING SUM(impressions) >= CUSTOM_PARAMETER('min_impressions')
