//! Builder inventory (machines files, ssh_config, known_hosts), probing and build history. Lands with the distributed-builds issue.
