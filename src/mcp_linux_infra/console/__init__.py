"""The approval console: a small web app where operators enroll a passkey, log in with it,
and approve or reject proposals, signing in the browser the document the page shows. The
server repacks each WebAuthn assertion into an SSHSIG; it holds no signing key."""
