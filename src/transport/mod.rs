//! Transports to builders: SSH (russh) and local child process behind one trait. Lands with the distributed-builds issue.
