"""docker/ without a Docker engine (the compose_config ctest, tests/e2e/compose.sh): the compose
file is validated by a compose implementation that needs no engine (`docker compose config` or
Debian's docker-compose), and its normalized form is checked structurally against the rest of
the repository: every role of scripts/topology.sh is a service running the same subcommand, with
two instances of each (issue 17: replicas for stateless roles, one service with its own
TK_INSTANCE_ID per consumer-group member), the infrastructure is the local stack's (a 3-node Kafka
3.9 KRaft cluster as scripts/cluster.sh runs it, PostgreSQL 15, the stripe-mock version
scripts/setup.sh pins), start-up order follows the dependencies, the ingress routes each API
prefix to the context that serves it (as the topology's nginx does, with passive health checks),
and the runtime image installs the package of every shared library the binary needs.

Run explicitly: `pytest tests/e2e/compose_check.py` (TICKETING_BIN=<binary> for the library
check). No server is started.
"""

import os
import re
import shutil
import subprocess

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPOSE = os.path.join(REPO, "docker", "docker-compose.yml")
NGINX = os.path.join(REPO, "docker", "nginx.conf")
DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
TOPOLOGY = os.path.join(REPO, "scripts", "topology.sh")
APIS = {"/api/users": "auth", "/api/tickets": "tickets", "/api/orders": "orders",
        "/api/payments": "payments"}


def compose_cli():
    """The command line of an engine-free compose implementation, or None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def interpolate(text):
    """${VAR:-default} and ${VAR} as compose does, for the fallback without a compose tool."""
    def sub(m):
        name, default = m.group(1), m.group(3)
        return os.environ.get(name) or (default if default is not None else "")
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}", sub, text)


@pytest.fixture(scope="module")
def config():
    """The compose file as the engine would run it: normalized by the tool when there is one."""
    cli = compose_cli()
    if cli is not None:
        out = subprocess.run(cli + ["-f", COMPOSE, "config"], capture_output=True, text=True,
                             env={**os.environ, "JWT_KEY": "x"})
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)
    with open(COMPOSE) as f:
        return yaml.safe_load(interpolate(f.read()))


def command_of(service):
    cmd = service.get("command") or []
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def depends(service):
    d = service.get("depends_on") or {}
    return {k: "service_started" for k in d} if isinstance(d, list) else \
        {k: (v or {}).get("condition", "service_started") for k, v in d.items()}


def topology_text():
    """scripts/topology.sh with its serve ports, $((SERVE_BASE + N)), at their defaults."""
    with open(TOPOLOGY) as f:
        text = f.read()
    base = int(re.search(r'^SERVE_BASE="\$\{TOPOLOGY_SERVE_PORT_BASE:-(\d+)\}"', text, re.M).group(1))
    return re.sub(r"\$\(\(SERVE_BASE \+ (\d+)\)\)", lambda m: str(base + int(m.group(1))), text)


def topology_roles():
    """role -> (port, ticketing arguments) from scripts/topology.sh's ROLES."""
    text = topology_text()
    block = re.search(r"^ROLES=\(\n(.*?)^\)", text, re.M | re.S).group(1)
    roles = {}
    for role, port, args in re.findall(r'"([a-z-]+)\|([^|"]*)\|([a-z ]+)"', block):
        roles[role] = (port, args)
    return roles


def nginx_routes(text):
    """(location prefix -> upstream name, upstream name -> servers) of an nginx config."""
    upstreams = {name: re.findall(r"server\s+([^;\s]+)", body)
                 for name, body in re.findall(r"upstream\s+(\w+)\s*\{([^}]*)\}", text)}
    locations = dict(re.findall(r"location\s+(/api/\w+)\s*\{[^}]*proxy_pass\s+http://(\w+)", text))
    return locations, upstreams


def test_an_engine_free_compose_implementation_validates_the_file():
    cli = compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed (scripts/setup.sh "
                    "installs Debian's docker-compose); the structural checks still run")
    out = subprocess.run(cli + ["-f", COMPOSE, "config", "-q"], capture_output=True, text=True,
                         env={**os.environ, "JWT_KEY": "x"})
    assert out.returncode == 0, out.stderr


def instances(service):
    return int((service.get("deploy") or {}).get("replicas", 1))


def test_every_role_of_the_topology_is_a_service(config):
    services = config["services"]
    app = {name: s for name, s in services.items() if s.get("image") == "ticketing:local"}
    commands = {command_of(s) for name, s in app.items() if name != "init"}
    wanted = {args for _, args in topology_roles().values()}
    assert commands == wanted
    for name, s in app.items():
        if name == "init":
            continue
        assert s.get("restart") == "unless-stopped", name
        env = s["environment"]
        for var in ("KAFKA_BROKERS", "DATABASE_URL", "JWT_KEY", "STRIPE_API_BASE", "PORT"):
            assert env.get(var), f"{name} lacks {var}"
        assert "build" in s and s["build"]["dockerfile"].endswith("docker/Dockerfile")
    # Two instances of every role; a consumer-group member has a stable instance id of its own.
    count, ids = {}, {}
    for name, s in app.items():
        if name == "init":
            continue
        cmd = command_of(s)
        count[cmd] = count.get(cmd, 0) + instances(s)
        if cmd.startswith(("project ", "expire")):
            assert instances(s) == 1, f"{name}: a group member needs its own TK_INSTANCE_ID"
            iid = s["environment"].get("TK_INSTANCE_ID")
            assert iid and iid not in ids, f"{name}: TK_INSTANCE_ID missing or shared"
            ids[iid] = name
        else:
            assert "TK_INSTANCE_ID" not in s["environment"], name
    assert all(n == 2 for n in count.values()), count
    init = services["init"]
    entry = " ".join(init.get("entrypoint") or [])
    assert "ticketing migrate" in entry and "ticketing topics" in entry


def test_the_infrastructure_is_the_local_stacks(config):
    services = config["services"]
    nodes = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    pg, stripe = services["postgres"], services["stripe"]
    voters = ",".join(f"{n}@kafka-{n}:9093" for n in (1, 2, 3))
    advertised, cluster_ids = [], set()
    for n, kafka in enumerate(nodes, 1):
        assert re.fullmatch(r"apache/kafka:3\.9\.\d+", kafka["image"])
        kenv = {k: str(v) for k, v in kafka["environment"].items()}
        assert kenv["KAFKA_NODE_ID"] == str(n)
        assert set(kenv["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert kenv["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert kenv["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # `ticketing topics` makes them
        assert kenv["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert kenv["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kenv["CLUSTER_ID"]), "a KRaft cluster id"
        cluster_ids.add(kenv["CLUSTER_ID"])
        advertised.append(kenv["KAFKA_ADVERTISED_LISTENERS"].split("//")[1])
        assert kafka["healthcheck"]["test"], "kafka needs a health check"
    assert len(cluster_ids) == 1, "one cluster id for the three nodes"
    advertised = ",".join(advertised)
    assert re.fullmatch(r"postgres:15(\.\d+)?", pg["image"])
    with open(os.path.join(REPO, "scripts", "setup.sh")) as f:
        pinned = re.search(r"^STRIPE_MOCK_VERSION=(\S+)", f.read(), re.M).group(1)
    assert stripe["image"] == f"stripe/stripe-mock:{pinned}"
    for name, s in services.items():
        if s.get("image") == "ticketing:local":
            env = s["environment"]
            assert env["KAFKA_BROKERS"] == advertised, name
            assert str(env["KAFKA_REPLICATION_FACTOR"]) == "3", name
            assert str(env["KAFKA_MIN_INSYNC_REPLICAS"]) == "2", name
            assert "@postgres:5432/" in env["DATABASE_URL"], name
            assert env["STRIPE_API_BASE"] == "http://stripe:12111", name
    assert pg["healthcheck"]["test"], "postgres needs a health check"


def test_services_start_in_dependency_order(config):
    services = config["services"]
    for name, s in services.items():
        for dep in depends(s):
            assert dep in services, f"{name} depends on unknown {dep}"
    assert depends(services["init"]) == {"kafka-1": "service_healthy",
                                         "kafka-2": "service_healthy",
                                         "kafka-3": "service_healthy",
                                         "postgres": "service_healthy"}
    for name, s in services.items():
        if s.get("image") == "ticketing:local" and name != "init":
            assert depends(s) == {"init": "service_completed_successfully"}, name
    serves = {n for n, s in services.items() if command_of(s).startswith("serve ")}
    assert depends(services["ingress"]) == {n: "service_healthy" for n in serves}
    for n in serves:
        assert "/readyz" in " ".join(services[n]["healthcheck"]["test"]), n


def test_the_ingress_routes_like_the_topology(config):
    services = config["services"]
    ingress = services["ingress"]
    ports = [str(p.get("published", "")) + ":" + str(p.get("target", "")) if isinstance(p, dict)
             else str(p) for p in ingress["ports"]]
    assert ports == ["8080:80"]
    assert any(str(v).endswith("nginx.conf:/etc/nginx/nginx.conf:ro") or
               (isinstance(v, dict) and v.get("target") == "/etc/nginx/nginx.conf")
               for v in ingress["volumes"])
    with open(NGINX) as f:
        locations, upstreams = nginx_routes(f.read())
    assert locations == APIS
    for prefix, ctx in APIS.items():
        (server,) = upstreams[locations[prefix]]
        host, port = server.split(":")
        assert command_of(services[host]) == f"serve {ctx}", prefix
        assert str(services[host]["environment"]["PORT"]) == port, prefix
        assert instances(services[host]) == 2, prefix

    text = topology_text()
    topo_locations, _ = nginx_routes(text)
    assert topo_locations == APIS
    # The topology's upstreams list every instance of the context's serve role (--replicas).
    topo_upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*\$\(upstream_servers ([\w-]+)\)",
                                     text))
    roles = topology_roles()
    for prefix, ctx in APIS.items():
        assert topo_upstreams[ctx] == f"serve-{ctx}", prefix
        assert roles[f"serve-{ctx}"][0], prefix
    # Passive health checks and retries of what was not sent, in both ingresses.
    for conf in (open(NGINX).read(), text):
        assert "max_fails=" in conf and "fail_timeout=" in conf
        assert re.search(r"proxy_next_upstream\s+error timeout", conf)
        assert not re.search(r"proxy_next_upstream\s[^;]*non_idempotent", conf)


def test_the_ingress_sends_the_storefront_to_a_server(config):
    """/ (the storefront, compiled into every server) goes to a serve service, in both configs."""
    services = config["services"]
    for conf in (NGINX, TOPOLOGY):
        with open(conf) as f:
            text = f.read()
        m = re.search(r"location\s+/\s*\{[^}]*proxy_pass\s+http://(\w+)", text)
        assert m, f"{conf}: location / does not proxy to a server"
        assert m.group(1) in APIS.values(), conf
        if conf == NGINX:
            assert command_of(services[m.group(1)]).startswith("serve "), conf


def test_the_dockerfile_is_multi_stage_and_small():
    with open(DOCKERFILE) as f:
        text = f.read()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M | re.I)
    assert len(stages) >= 2
    assert stages[-1][0].endswith("-slim"), "the runtime stage starts from a slim image"
    assert re.search(r"^COPY --from=%s \S*ticketing " % stages[0][1], text, re.M)
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/ticketing"\]', text, re.M)
    runtime = text[text.rindex("FROM "):]
    assert "-dev" not in runtime, "no development packages in the runtime image"
    assert os.path.exists(DOCKERFILE + ".dockerignore")


def test_the_runtime_image_has_every_library_the_binary_needs():
    binary = os.environ.get("TICKETING_BIN")
    if not binary or not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.skip("TICKETING_BIN, readelf and dpkg are needed")
    with open(DOCKERFILE) as f:
        runtime = f.read().rsplit("FROM ", 1)[1]
    installed = set(re.findall(r"\b(lib[a-z0-9.+-]+)\b", runtime))
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                        subprocess.run(["readelf", "-d", binary], capture_output=True,
                                       text=True).stdout)
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    missing = []
    for soname in needed:
        m = re.search(r"^\s*%s \(.*x86-64.*\) => (\S+)" % re.escape(soname), cache, re.M) or \
            re.search(r"^\s*%s .*=> (\S+)" % re.escape(soname), cache, re.M)
        assert m, f"{soname} not found by ldconfig"
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))],
                               capture_output=True, text=True)
        if owner.returncode != 0:  # dpkg knows the path it installed, maybe not the realpath
            owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True, text=True)
        pkg = owner.stdout.split(":")[0]
        # A sanitizer build (CI's second pass) links the sanitizer runtimes; the image's release
        # build does not.
        sanitizer = re.match(r"lib(a|ub|l|t)san\d*$", pkg)
        if pkg not in ("libc6",) and pkg not in installed and not sanitizer:
            missing.append(f"{soname} ({pkg})")
    assert not missing, f"the runtime stage does not install: {missing}"
