"""The HCCL rank table (version 1.0 JSON): validation, and the devices this server runs.

    python -m common.rank_table --table=scripts/8p.json [--server_index=N] [--rank_size=N]

prints `rank_size N` and then one `DEVICE_ID RANK_ID` line per device of this server, or one
'error: ...' line and exits 2. This server is --server_index when given, else the server
whose server_id is one of this machine's addresses, else the only server of the table.
"""
import argparse
import json
import socket
import subprocess
import sys

from common.errors import UsageError

DEVICES_PER_SERVER = 8  # Ascend 910 servers: device ids 0..7


def _field(entry, name, where):
    if not isinstance(entry, dict) or name not in entry:
        raise UsageError('%s has no "%s"' % (where, name))
    return entry[name]


def _integer(value, what):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UsageError('%s is %r, not an integer' % (what, value)) from None


def load(path):
    """[(server_id, [(device_id, rank_id), ...]), ...] of a valid table; UsageError otherwise."""
    try:
        with open(path) as f:
            table = json.load(f)
    except OSError as e:
        raise UsageError('rank table %s: %s' % (path, e.strerror)) from None
    except ValueError as e:
        raise UsageError('rank table %s is not valid JSON: %s' % (path, e)) from None
    where = 'rank table %s' % path
    servers = _field(table, 'server_list', where)
    if not isinstance(servers, list) or not servers:
        raise UsageError('%s: server_list is empty' % where)
    count = _integer(_field(table, 'server_count', where), where + ': server_count')
    if count != len(servers):
        raise UsageError('%s: server_count is %d but server_list has %d servers'
                         % (where, count, len(servers)))
    result, ranks, addresses = [], {}, {}
    for index, server in enumerate(servers):
        at = '%s: server_list[%d]' % (where, index)
        server_id = _field(server, 'server_id', at)
        devices = _field(server, 'device', at)
        if not isinstance(devices, list) or not devices:
            raise UsageError('%s has no devices' % at)
        entries, seen = [], set()
        for d, device in enumerate(devices):
            dat = '%s.device[%d]' % (at, d)
            device_id = _integer(_field(device, 'device_id', dat), dat + '.device_id')
            rank_id = _integer(_field(device, 'rank_id', dat), dat + '.rank_id')
            device_ip = str(_field(device, 'device_ip', dat)).strip()
            if not 0 <= device_id < DEVICES_PER_SERVER:
                raise UsageError('%s.device_id is %d, outside 0..%d'
                                 % (dat, device_id, DEVICES_PER_SERVER - 1))
            if not device_ip:
                raise UsageError('%s.device_ip is empty' % dat)
            if device_ip in addresses:
                raise UsageError('%s.device_ip %s is also %s.device_ip'
                                 % (dat, device_ip, addresses[device_ip]))
            addresses[device_ip] = 'server_list[%d].device[%d]' % (index, d)
            if device_id in seen:
                raise UsageError('%s: device_id %d appears twice on server %s'
                                 % (where, device_id, server_id))
            if rank_id in ranks:
                raise UsageError('%s: rank_id %d appears twice (%s and %s)'
                                 % (where, rank_id, ranks[rank_id], dat))
            seen.add(device_id)
            ranks[rank_id] = dat
            entries.append((device_id, rank_id))
        result.append((server_id, entries))
    if sorted(ranks) != list(range(len(ranks))):
        missing = sorted(set(range(len(ranks))) - set(ranks))
        raise UsageError('%s: rank ids must run 0..%d without gaps; missing %s'
                         % (where, len(ranks) - 1, ', '.join(map(str, missing))))
    return result


def _local_addresses():
    addresses = {socket.gethostname(), socket.getfqdn()}
    try:
        addresses.update(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        pass
    try:
        out = subprocess.run(['hostname', '-I'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, check=False)
        addresses.update(out.stdout.split())
    except OSError:
        pass
    return addresses


def this_server(servers, server_index=None, addresses=None):
    """Index of this machine's server in the table."""
    if server_index is not None:
        if not 0 <= server_index < len(servers):
            raise UsageError('SERVER_INDEX=%d but the rank table has %d server(s)'
                             % (server_index, len(servers)))
        return server_index
    if len(servers) == 1:
        return 0
    addresses = _local_addresses() if addresses is None else addresses
    matches = [i for i, (server_id, _) in enumerate(servers) if server_id in addresses]
    if len(matches) != 1:
        raise UsageError('cannot tell which of the %d servers in the rank table this machine is '
                         '(server_ids %s; its addresses %s); set SERVER_INDEX=0..%d'
                         % (len(servers), ', '.join(s for s, _ in servers),
                            ', '.join(sorted(addresses)), len(servers) - 1))
    return matches[0]


def plan(path, server_index=None, rank_size=None, addresses=None):
    """(rank_size, [(device_id, rank_id)] of this server) after validating the table."""
    servers = load(path)
    total = sum(len(devices) for _, devices in servers)
    if rank_size is not None and rank_size != total:
        raise UsageError('RANK_SIZE=%d but the rank table %s lists %d devices'
                         % (rank_size, path, total))
    return total, servers[this_server(servers, server_index, addresses)][1]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--table', required=True)
    parser.add_argument('--server_index', type=int)
    parser.add_argument('--rank_size', type=int)
    args = parser.parse_args(argv)
    try:
        total, devices = plan(args.table, args.server_index, args.rank_size)
    except UsageError as e:
        print('error: %s' % e, file=sys.stderr)
        return 2
    print('rank_size %d' % total)
    for device_id, rank_id in devices:
        print('%d %d' % (device_id, rank_id))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
