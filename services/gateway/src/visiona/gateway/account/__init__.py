"""The account sagas the gateway runs itself: the Clerk profile (accounts), erasure, export,
and the audit log. Their SQL is in visiona.gateway.repository; Clerk's SDK in
visiona.gateway.providers.clerk."""
