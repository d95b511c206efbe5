"""Development servers: a real Tryton with a cached seeded database (tests, bench, the demo) and the demo stack."""
