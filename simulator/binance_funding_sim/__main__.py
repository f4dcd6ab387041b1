from binance_funding_sim.cli import main

raise SystemExit(main())
