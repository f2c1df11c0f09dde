#!/bin/sh
# Print tunnel-client@.service, the template for several tunnels on one VM, derived from
# tunnel-client.service so both keep the same hardening. Instance NAME reads
# /etc/tunnel-client/NAME.yaml and /etc/tunnel-client/NAME.env, keeps its runtime files in
# /run/tunnel-client/NAME and its state in /var/lib/tunnel-client/NAME.
# Usage: template-unit.sh packaging/systemd/tunnel-client.service > tunnel-client@.service
set -eu
sed -e 's|^Description=.*|Description=Secure MCP Tunnel client, instance %i|' \
    -e 's|/etc/tunnel-client/tunnel-client.env|/etc/tunnel-client/%i.env|g' \
    -e 's|/etc/tunnel-client/config.yaml|/etc/tunnel-client/%i.yaml|g' \
    -e 's|^WorkingDirectory=.*|WorkingDirectory=/var/lib/tunnel-client/%i|' \
    -e 's|^StateDirectory=.*|StateDirectory=tunnel-client/%i|' \
    -e 's|^RuntimeDirectory=.*|RuntimeDirectory=tunnel-client/%i|' \
    -e 's|^LogsDirectory=.*|LogsDirectory=tunnel-client/%i|' \
    -e 's|^SyslogIdentifier=.*|SyslogIdentifier=tunnel-client@%i|' \
    -e 's|systemctl edit tunnel-client$|systemctl edit tunnel-client@NAME|' \
    "$1"
