from gatedrec.cli import main

raise SystemExit(main())
