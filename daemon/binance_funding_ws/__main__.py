from binance_funding_ws.cli import main

raise SystemExit(main())
