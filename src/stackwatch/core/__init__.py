"""The core: the Event, the Alert, errors and clocks. Imports nothing else of stackwatch."""
