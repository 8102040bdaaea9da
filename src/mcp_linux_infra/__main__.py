from mcp_linux_infra.cli import main

raise SystemExit(main())
