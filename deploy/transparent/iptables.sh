#!/bin/sh
# scrubgate transparent mode with iptables/ip6tables: the same rules as
# nftables.conf, for hosts that still manage their firewall with iptables.
# See README.md.
#
#   LAN_IF=eth1 PROXY_PORT=8080 GATEWAY_USER=scrubgate sh iptables.sh apply
#   sh iptables.sh remove
#   DRY_RUN=1 sh iptables.sh apply      # print the commands, change nothing
#
# All rules live in chains of their own (SCRUBGATE_*), hooked into the
# built-in chains with one unconditional jump each, so `apply` can be run again (it starts
# from empty chains) and `remove` takes out exactly what `apply` added.
# Rules are not persistent across reboots: save them with your distribution's
# tool (iptables-save / netfilter-persistent), or prefer nftables.conf.

set -eu

LAN_IF=${LAN_IF:-eth1}                  # the interface facing the clinical LAN
PROXY_PORT=${PROXY_PORT:-8080}          # scrubgate run --listen-port
GATEWAY_USER=${GATEWAY_USER:-scrubgate} # the user scrubgate runs as (its own traffic is exempt)
IPV6=${IPV6:-yes}                       # also set up ip6tables
ACTION=${1:-apply}

run() {
    if [ -n "${DRY_RUN:-}" ]; then
        echo "$*"
    else
        "$@"
    fi
}

# Quietly: for commands that may fail because there is nothing to undo.
try() {
    if [ -n "${DRY_RUN:-}" ]; then
        echo "$* || true"
    else
        "$@" 2>/dev/null || true
    fi
}

families() {
    echo iptables
    if [ "$IPV6" = yes ]; then
        echo ip6tables
    fi
}

remove_family() {
    ipt=$1
    try "$ipt" -t nat -D PREROUTING -j SCRUBGATE_PRE
    try "$ipt" -t nat -D OUTPUT -j SCRUBGATE_OUT
    try "$ipt" -t filter -D FORWARD -j SCRUBGATE_FWD
    try "$ipt" -t filter -D INPUT -j SCRUBGATE_IN
    for spec in nat:SCRUBGATE_PRE nat:SCRUBGATE_OUT filter:SCRUBGATE_FWD filter:SCRUBGATE_IN; do
        try "$ipt" -t "${spec%%:*}" -F "${spec#*:}"
        try "$ipt" -t "${spec%%:*}" -X "${spec#*:}"
    done
}

apply_family() {
    ipt=$1
    if [ "$ipt" = ip6tables ]; then
        reject="icmp6-adm-prohibited"
    else
        reject="icmp-admin-prohibited"
    fi
    remove_family "$ipt"
    for spec in nat:SCRUBGATE_PRE nat:SCRUBGATE_OUT filter:SCRUBGATE_FWD filter:SCRUBGATE_IN; do
        run "$ipt" -t "${spec%%:*}" -N "${spec#*:}"
    done

    # Web traffic arriving from the LAN goes to the gateway, except traffic to
    # this host itself. The gateway's own upstream connections leave through
    # OUTPUT, never PREROUTING, so they are not caught here.
    run "$ipt" -t nat -A SCRUBGATE_PRE -i "$LAN_IF" -m addrtype --dst-type LOCAL -j RETURN
    run "$ipt" -t nat -A SCRUBGATE_PRE -i "$LAN_IF" -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports "$PROXY_PORT"
    run "$ipt" -t nat -A PREROUTING -j SCRUBGATE_PRE

    # Optional: this host's own web traffic through the gateway too. The
    # gateway's user is exempt, or its upstream connections would loop back
    # into itself. Uncomment the second rule to use it.
    run "$ipt" -t nat -A SCRUBGATE_OUT -m owner --uid-owner "$GATEWAY_USER" -j RETURN
    # run "$ipt" -t nat -A SCRUBGATE_OUT ! -o lo -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports "$PROXY_PORT"
    run "$ipt" -t nat -A OUTPUT -j SCRUBGATE_OUT

    # QUIC (UDP/443) would go straight past a TCP proxy: reject it, so browsers
    # fall back to TCP, which is redirected above.
    run "$ipt" -t filter -A SCRUBGATE_FWD -i "$LAN_IF" -p udp --dport 443 -j REJECT --reject-with "$reject"
    run "$ipt" -t filter -I FORWARD 1 -j SCRUBGATE_FWD

    # The proxy port takes only redirected connections (and local ones).
    run "$ipt" -t filter -A SCRUBGATE_IN -i "$LAN_IF" -p udp --dport 443 -j REJECT --reject-with "$reject"
    run "$ipt" -t filter -A SCRUBGATE_IN ! -i lo -p tcp --dport "$PROXY_PORT" -m conntrack --ctstate DNAT -j ACCEPT
    run "$ipt" -t filter -A SCRUBGATE_IN ! -i lo -p tcp --dport "$PROXY_PORT" -j DROP
    run "$ipt" -t filter -I INPUT 1 -j SCRUBGATE_IN
}

case "$ACTION" in
    apply)
        if [ -z "${DRY_RUN:-}" ] && ! id -u "$GATEWAY_USER" >/dev/null 2>&1; then
            echo "iptables.sh: user $GATEWAY_USER does not exist (create it first: deploy/systemd/README.md)" >&2
            exit 1
        fi
        for ipt in $(families); do
            apply_family "$ipt"
        done
        ;;
    remove)
        for ipt in $(families); do
            remove_family "$ipt"
        done
        ;;
    *)
        echo "usage: $0 apply|remove   (env: LAN_IF, PROXY_PORT, GATEWAY_USER, IPV6=yes|no, DRY_RUN=1)" >&2
        exit 2
        ;;
esac
