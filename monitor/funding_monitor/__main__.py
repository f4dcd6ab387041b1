from funding_monitor.cli import main

raise SystemExit(main())
