"""Discord webhook simulator (``emberwatch sim discord``)."""
