"""Events: every job's outcome, and the conditions an operator must act on, as CloudEvents — published
into a durable outbox by the job itself, then fanned out to the Event Grid topic and to the namespace's
webhooks, each delivery with its own retries."""
