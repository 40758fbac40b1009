//! The `--help` text.

/// The tgt release whose command line tgtadm reproduces.
pub const TGT_COMPAT_VERSION: &str = "1.0.85";

pub fn usage() -> String {
    format!(
        "\
rtgt tgtadm {rtgt}: SCSI target administration, command-line compatible with tgt {tgt}

Usage: tgtadm [OPTION]...

Targets (--mode target):
  --lld iscsi --mode target --op new --tid ID --targetname NAME
        create target ID named NAME
  --lld iscsi --mode target --op delete [--force] --tid ID
        delete target ID; with --force its sessions are closed first, without it
        a target with sessions is refused
  --lld iscsi --mode target --op show [--tid ID]
        list every target, or print target ID's parameters
  --lld iscsi --mode target --op update --tid ID --name PARAM --value VALUE
        change a target parameter (an iSCSI key such as MaxRecvDataSegmentLength
        (default 262144), MaxBurstLength (262144), FirstBurstLength (65536),
        MaxQueueCmd (128), MaxSessions (0: only tgtd's bound), nop_interval,
        nop_count, or state with the value offline or ready)
  --lld iscsi --mode target --op bind|unbind --tid ID --initiator-address ADDR
  --lld iscsi --mode target --op bind|unbind --tid ID --initiator-name NAME
        allow (bind) or stop allowing (unbind) initiators by address (ALL, an
        IPv4/IPv6 address, or ADDRESS/PREFIX) or by iSCSI name

Logical units (--mode logicalunit):
  --lld iscsi --mode logicalunit --op new --tid ID --lun LUN
        [--backing-store PATH] [--bstype rdwr|aio|memory|null|rbd]
        [--bsopts size=1G]
        [--bsoflags sync|direct|sync:direct] [--device-type disk]
        [--blocksize 512|4096] [--params K=V[,K=V]]
        add logical unit LUN to target ID (defaults: --bstype rdwr, a file or
        block device; aio is the same on io_uring; --device-type disk;
        --blocksize 512; rbd only in a tgtd built with the rbd feature)
  --lld iscsi --mode logicalunit --op delete --tid ID --lun LUN
        remove logical unit LUN from target ID
  --lld iscsi --mode logicalunit --op update --tid ID --lun LUN --params K=V[,K=V]
        change logical unit parameters (vendor_id, product_id, readonly, ...)
  --lld iscsi --mode logicalunit --op update --tid ID --lun LUN --params capacity=reload
        re-read the backing store's size after it grew or shrank (online resize)
  --lld iscsi --mode logicalunit --op show --tid ID --lun LUN
  --lld iscsi --mode logicalunit --op stats --tid ID [--lun LUN] [--json]
        command counts, bytes, errors and latency of one LUN or every LUN (as /metrics)

CHAP accounts (--mode account):
  --lld iscsi --mode account --op new --user NAME --password SECRET
  --lld iscsi --mode account --op delete --user NAME
  --lld iscsi --mode account --op bind|unbind --tid ID --user NAME [--outgoing]
        use the account for target ID (tid 0: discovery sessions); --outgoing
        is the target's own account for mutual CHAP
  --lld iscsi --mode account --op show [--json [--secrets]]

Portals, the driver, sessions and connections:
  --lld iscsi --mode portal --op new|delete --param portal=ADDRESS:PORT
  --lld iscsi --mode portal --op show
  --lld iscsi --mode lld --op show|start
        the drivers and their targets; start is accepted (the drivers run from
        start-up); stop is refused: a driver stops with the daemon
  --lld iscsi --mode session --op show --tid ID [--sid SID]
  --lld iscsi --mode session --op delete --tid ID --sid SID
  --lld iscsi --mode conn --op show --tid ID [--sid SID [--cid CID]]
  --lld iscsi --mode conn --op delete --tid ID --sid SID --cid CID

vhost-user-scsi targets for VMs (--lld vhost; the target's name is its socket):
  --lld vhost --mode target --op new --tid ID --targetname /PATH/TO/vm.sock
  --lld vhost --mode target --op delete [--force] --tid ID
  --lld vhost --mode target --op show [--tid ID] [--json]
  --lld vhost --mode logicalunit --op new|delete|show ... (as for iscsi)
  --lld vhost --mode logicalunit --op update --tid ID --lun LUN --params capacity=reload

The daemon (--mode system):
  --mode system --op show               state, drivers, backing stores, device types
  --mode system --op update --name State --value offline|ready
        offline: no new logins, existing sessions go on
  --mode system --op update --name max_sessions --value N
        the most sessions tgtd serves at once (as tgtd --iscsi max_sessions=N;
        default 4096)
  --mode system --op update --name write_budget --value SIZE
        write data all connections may hold in memory (default 1G, at least 1M)
  --mode system --op update --name read_budget --value SIZE
        read data of large READs all connections may hold until it is sent
        (default 1G, at least 1M)
  --mode system --op update --name data_out_timeout --value SECS
        how long an admitted write may wait for Data-Out (default 30, 1-3600)
  --mode system --op update --name send_timeout --value SECS
        how long a connection's socket may take no reply bytes before the
        connection is closed (default 30, 1-3600)
  --mode system --op update --name debug --value on|off
        debug logging now; off: back to RUST_LOG or info
  --mode system --op delete [--force]   stop tgtd (refused while targets exist
                                        unless --force; sessions are logged out)

The original tgt design's syntax is accepted too:
  --driver istgt --op new --tid ID --params Name=NAME
  --driver istgt --op new --tid ID --lun LUN --params Path=PATH[,Type=tgt_vsd]
  --driver istgt --op delete --tid ID [--lun LUN]

Options:
  -L, --lld DRIVER             the transport: iscsi (default), or vhost for
                               vhost-user-scsi
  -m, --mode MODE              target (tgt), logicalunit (lu), account, portal,
                               lld, session, conn, system (sys)
  -o, --op OPERATION           new, delete, show, bind, unbind, update, start
  -t, --tid ID                 target id
  -T, --targetname NAME        target name
  -l, --lun LUN                logical unit number
  -b, --backing-store PATH     backing file or device
  -E, --bstype TYPE            backing store engine: rdwr (default), aio,
                               memory, null, rbd
  -S, --bsopts OPTIONS         backing store options, e.g. size=1G
  -f, --bsoflags FLAGS         sync, direct, sync:direct (default: none)
  -Y, --device-type TYPE       device type (default disk)
  -y, --blocksize SIZE         logical block size, 512 (default) or 4096
  -P, --params K=V[,K=V]       parameters
  -I, --initiator-address A    initiator address rule
  -Q, --initiator-name NAME    initiator name rule
  -n, --name NAME              parameter name
  -v, --value VALUE            parameter value
  -u, --user NAME              account name
  -p, --password SECRET        account password
  -O, --outgoing               the outgoing (mutual CHAP) account
  -s, --sid SID                session id
  -c, --cid CID                connection id
  -F, --force                  force the operation
  -C, --control-port N         talk to the daemon on /var/run/tgtd/socket.N
      --control-socket PATH    talk to the daemon on PATH
                               (default: $RTGT_CONTROL_SOCKET, else
                               /var/run/tgtd/socket.0)
      --wait SECS              if the daemon is still starting (no socket yet),
                               keep trying for up to SECS seconds
      --json                   print replies as JSON
      --secrets                with --json, include account passwords
  -h, --help                   print this help and exit
  -V, --version                print the version and exit
",
        rtgt = env!("CARGO_PKG_VERSION"),
        tgt = TGT_COMPAT_VERSION
    )
}
