#!/usr/bin/env bash
# Usage: .ci/swarm.sh up|down|env
# A three-node Docker Swarm on this one machine, for tests of `docker stack deploy` (harness only):
# Docker-in-Docker nodes swarmtest-node1 (manager, label data=true), -node2 and -node3 (workers)
# and swarmtest-registry, on the bridge network swarmtest (SWARM_SUBNET, default 172.30.77.0/24:
# registry .10, nodes .11-.13). The registry serves TLS from a CA made here that the host engine
# and the nodes trust in /etc/docker/certs.d/IP:5000/: an image is IP:5000/NAME:TAG for the host
# that pushes and the nodes that pull. A node's /var/lib/docker is a volume: `docker stop` and
# `docker start` of a node is a machine's reboot (`docker kill`, a power cut); it rejoins.
#   up    creates what is missing, waits until the three nodes are Ready, prints what env prints
#   env   prints SWARM_MANAGER=tcp://IP:2375, SWARM_REGISTRY=IP:5000, SWARM_NODES=IP,IP,IP,
#         SWARM_NETWORK=swarmtest (fails when no manager answers)
#   down  removes all that up made, and the host's tags of images named SWARM_REGISTRY/...
# Use: while IFS= read -r line; do export "$line"; done < <(.ci/swarm.sh up)
#      docker push "$SWARM_REGISTRY/app:1"; docker -H "$SWARM_MANAGER" stack deploy -c FILE NAME
# Images: DIND_IMAGE, REGISTRY_IMAGE as .ci/images/build.sh prints them. Also SWARM_STATE_DIR
# (CA, registry key; /var/tmp/swarmtest), SWARM_TIMEOUT (seconds, 120). Progress: stderr, [swarm].
set -Eeuo pipefail

usage() { sed -n '2,18s/^# \{0,1\}//p' "$0"; exit "${1:-0}"; }

prefix=swarmtest
network=$prefix
subnet=${SWARM_SUBNET:-172.30.77.0/24}
dind_image=${DIND_IMAGE:-stack-standin/dind:26}
registry_image=${REGISTRY_IMAGE:-stack-standin/registry:2}
# The CA's certificate and the registry's key pair, kept while the cluster is up.
state=${SWARM_STATE_DIR:-/var/tmp/$prefix}
certs_d=/etc/docker/certs.d
nodes=(node1 node2 node3)
timeout=${SWARM_TIMEOUT:-120}

[[ $subnet =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] || { echo "SWARM_SUBNET must be A.B.C.0/24, not $subnet" >&2; exit 2; }
net=${BASH_REMATCH[1]}
registry_ip=$net.10
registry=$registry_ip:5000
node_ip() { echo "$net.$((11 + $1))"; }  # node_ip INDEX (0, 1, 2)
manager_ip=$(node_ip 0)

log() { printf '[swarm] %s\n' "$*" >&2; }
die() { printf '[swarm] error: %s\n' "$*" >&2; exit 1; }
on() { local ip=$1; shift; docker -H "tcp://$ip:2375" "$@"; }  # on IP DOCKER-ARGUMENT...
exists() { docker "$1" inspect "$2" >/dev/null 2>&1; }  # exists container|network|volume NAME

# wait_for WHAT COMMAND...: polls COMMAND until it succeeds, for at most $timeout seconds.
wait_for() {
  local what=$1 deadline=$((SECONDS + timeout))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

print_env() {
  local ips=() i
  for i in "${!nodes[@]}"; do ips+=("$(node_ip "$i")"); done
  printf 'SWARM_MANAGER=tcp://%s:2375\nSWARM_REGISTRY=%s\nSWARM_NODES=%s\nSWARM_NODE_CONTAINERS=%s\nSWARM_NETWORK=%s\n' \
    "$manager_ip" "$registry" "$(IFS=,; echo "${ips[*]}")" "$prefix-node1,$prefix-node2,$prefix-node3" "$network"
}

# --- up -----------------------------------------------------------------------------------------

# A CA (its key thrown away once it has signed) and the registry's certificate for its IP.
make_certificates() {
  if [ -s "$state/tls/registry.crt" ] \
    && openssl x509 -in "$state/tls/registry.crt" -noout -checkend 86400 >/dev/null \
    && [[ $(openssl x509 -in "$state/tls/registry.crt" -noout -checkip "$registry_ip") == *"does match"* ]] \
    && openssl verify -CAfile "$state/ca/ca.crt" "$state/tls/registry.crt" >/dev/null 2>&1; then
    log "certificates: kept ($state)"
    return 0
  fi
  log "certificates: new CA and registry certificate for IP $registry_ip ($state)"
  work=$(mktemp -d)  # global: the EXIT trap still sees it
  trap 'rm -rf "${work:-}"' EXIT
  mkdir -p "$state/ca" "$state/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$prefix registry CA" -keyout "$work/ca.key" -out "$state/ca/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$registry_ip" \
    -keyout "$state/tls/registry.key" -out "$work/registry.csr" 2>/dev/null
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    'extendedKeyUsage=serverAuth' "subjectAltName=IP:$registry_ip" >"$work/registry.ext"
  openssl x509 -req -in "$work/registry.csr" -CA "$state/ca/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 30 -extfile "$work/registry.ext" -out "$state/tls/registry.crt" 2>/dev/null
  # A running registry serves the old pair until it restarts.
  if exists container "$prefix-registry"; then docker restart "$prefix-registry" >/dev/null; fi
}

# The host engine reads certs.d at each pull and push: no restart.
trust_on_host() {
  mkdir -p "$certs_d/$registry"
  if ! cmp -s "$state/ca/ca.crt" "$certs_d/$registry/ca.crt"; then
    log "host trusts the registry: $certs_d/$registry/ca.crt"
    cp "$state/ca/ca.crt" "$certs_d/$registry/ca.crt"
  fi
}

make_network() {
  if exists network "$network"; then
    local have
    have=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' "$network")
    [ "$have" = "$subnet" ] || die "network $network exists with subnet $have, not $subnet: run down first"
    return 0
  fi
  log "network $network ($subnet)"
  docker network create --driver bridge --subnet "$subnet" --label "$prefix=1" "$network" >/dev/null
}

# run_or_start NAME DOCKER-RUN-ARGUMENT...: the container, created or started as needed.
run_or_start() {
  local name=$1
  shift
  if ! exists container "$name"; then
    log "run $name"
    docker run -d --name "$name" --label "$prefix=1" "$@" >/dev/null
  elif [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
    log "start $name"
    docker start "$name" >/dev/null
  fi
}

start_registry() {
  exists volume "$prefix-registry" || docker volume create --label "$prefix=1" "$prefix-registry" >/dev/null
  run_or_start "$prefix-registry" --network "$network" --ip "$registry_ip" \
    -v "$prefix-registry:/var/lib/registry" -v "$state/tls:/certs:ro" \
    -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/registry.crt -e REGISTRY_HTTP_TLS_KEY=/certs/registry.key \
    "$registry_image"
}

# No --privileged here (the machine lacks CAP_SYS_RESOURCE): every capability but that one, no
# seccomp or AppArmor profile, a private cgroup namespace (the node's entrypoint remounts it).
# `docker stop` gives the inner engine time to stop its containers (10 s each at most), as a
# machine's shutdown would; `docker kill` is a power cut.
start_node() {
  local i=$1 name=$prefix-${nodes[$1]} ip
  ip=$(node_ip "$i")
  exists volume "$name" || docker volume create --label "$prefix=1" "$name" >/dev/null
  run_or_start "$name" --hostname "$name" --network "$network" --ip "$ip" --stop-timeout 30 \
    --cap-add ALL --cap-drop SYS_RESOURCE --cgroupns private \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v "$name:/var/lib/docker" \
    --mount "type=bind,source=$state/ca,target=$certs_d/$registry,readonly" \
    "$dind_image"
}

swarm_state() { on "$1" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}'; }

form_swarm() {
  local state_line i ip node_id token
  read -r state_line _ _ <<<"$(swarm_state "$manager_ip")"
  if [ "$state_line" = inactive ]; then
    log "swarm init on $prefix-node1 ($manager_ip)"
    on "$manager_ip" swarm init --advertise-addr "$manager_ip" >/dev/null
  fi
  wait_for "the manager to lead" on "$manager_ip" node ls
  token=$(on "$manager_ip" swarm join-token -q worker)
  for i in 1 2; do
    ip=$(node_ip "$i")
    read -r state_line _ node_id <<<"$(swarm_state "$ip")"
    # A worker whose swarm the manager does not know (the manager's volume was lost) leaves it.
    if [ "$state_line" != inactive ] && ! on "$manager_ip" node inspect "$node_id" >/dev/null 2>&1; then
      log "$prefix-${nodes[$i]} leaves a swarm the manager does not know"
      on "$ip" swarm leave --force >/dev/null
      state_line=inactive
    fi
    if [ "$state_line" = inactive ]; then
      log "$prefix-${nodes[$i]} ($ip) joins as a worker"
      on "$ip" swarm join --token "$token" --advertise-addr "$ip" "$manager_ip:2377" >/dev/null
    fi
  done
}

# ready_nodes: succeeds when each node's own ID is Ready on the manager.
ready_nodes() {
  local i node_id
  for i in "${!nodes[@]}"; do
    read -r _ _ node_id <<<"$(swarm_state "$(node_ip "$i")")"
    [ "$(on "$manager_ip" node inspect -f '{{.Status.State}}' "$node_id")" = ready ] || return 1
  done
}

# Entries of nodes that left (a worker that rejoined has a new ID; its old entry stays Down).
forget_stale_nodes() {
  local id current=() i node_id
  for i in "${!nodes[@]}"; do
    read -r _ _ node_id <<<"$(swarm_state "$(node_ip "$i")")"
    current+=("$node_id")
  done
  while read -r id; do
    [[ " ${current[*]} " == *" $id "* ]] && continue
    log "forget the stale node entry $id"
    on "$manager_ip" node rm --force "$id" >/dev/null
  done < <(on "$manager_ip" node ls -q)
}

up() {
  local image i
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  for image in "$dind_image" "$registry_image"; do
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image: run .ci/images/build.sh"
  done
  make_certificates
  trust_on_host
  make_network
  start_registry
  for i in "${!nodes[@]}"; do start_node "$i"; done
  log "wait for the registry and the three engines"
  wait_for "the registry at https://$registry/v2/" curl -fsS --cacert "$state/ca/ca.crt" "https://$registry/v2/"
  for i in "${!nodes[@]}"; do
    wait_for "the engine of $prefix-${nodes[$i]}" on "$(node_ip "$i")" version
  done
  form_swarm
  log "wait until the three nodes are Ready"
  wait_for "three Ready nodes" ready_nodes
  forget_stale_nodes
  # The manager holds the stack's data volumes (Postgres, Redis): `node.labels.data == true`.
  on "$manager_ip" node update --label-add data=true "$prefix-node1" >/dev/null
  log "up: 3 nodes Ready, manager tcp://$manager_ip:2375, registry $registry"
  print_env
}

# --- down ---------------------------------------------------------------------------------------

down() {
  local name images
  for name in "$prefix-node1" "$prefix-node2" "$prefix-node3" "$prefix-registry"; do
    if exists container "$name"; then
      log "remove $name"
      docker rm -f -v "$name" >/dev/null
    fi
    if exists volume "$name"; then
      log "remove volume $name"
      docker volume rm "$name" >/dev/null
    fi
  done
  if exists network "$network"; then
    log "remove network $network"
    docker network rm "$network" >/dev/null
  fi
  # Only the entry up wrote: a CA it made (by its name, in case $state is gone).
  if [[ $(openssl x509 -in "$certs_d/$registry/ca.crt" -noout -subject 2>/dev/null) == *"CN = $prefix registry CA" ]]; then
    log "remove $certs_d/$registry"
    rm -f "$certs_d/$registry/ca.crt"
    rmdir "$certs_d/$registry" "$certs_d" 2>/dev/null || true
  fi
  mapfile -t images < <(docker image ls --format '{{.Repository}}:{{.Tag}}' | awk -v p="$registry/" 'index($0, p) == 1')
  if [ ${#images[@]} -gt 0 ]; then
    log "untag ${#images[@]} host image(s) named $registry/..."
    docker image rm "${images[@]}" >/dev/null
  fi
  if [ -d "$state" ]; then
    log "remove $state"
    rm -rf "$state"
  fi
  log "down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env)
    on "$manager_ip" node ls >/dev/null 2>&1 || die "no swarm manager answers at tcp://$manager_ip:2375: run $0 up"
    print_env
    ;;
  -h | --help) usage ;;
  *) usage 2 ;;
esac
