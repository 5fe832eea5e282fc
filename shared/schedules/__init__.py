"""Timer schedules as Azure Functions reads them (NCRONTAB, TimeSpan): shared by the app, which
shows each environment's next scheduled run, and by the development host, which runs the timers."""
