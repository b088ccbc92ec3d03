"""The four baocao services and the small library they share (``services.common``)."""
