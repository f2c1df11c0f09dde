"""Static checks of the container recipe and the Kubernetes manifests (no docker, no
cluster here): schema validation, and the promises the files make to each other.

Usage: check_deploy.py ROOT TOOLS_BIN   (prints PASS/FAIL lines; exit 1 on a failure)
"""

import glob
import os
import re
import subprocess
import sys

import yaml

ROOT, TOOLS = sys.argv[1], sys.argv[2]
sys.path.insert(0, ROOT)
failures = []


def check(name, problems):
    if problems:
        failures.append(name)
        print("FAIL %s" % name)
        for problem in problems:
            print("    | %s" % problem)
    else:
        print("PASS %s" % name)


def run_tool(*argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    return [] if proc.returncode == 0 else proc.stdout.strip().splitlines()[-20:]


def project_version():
    with open(os.path.join(ROOT, "tunnel_client", "__init__.py")) as handle:
        return re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M).group(1)


def dockerfile():
    """The instructions, continuation lines joined: [(KEYWORD, argument text)]."""
    with open(os.path.join(ROOT, "packaging", "docker", "Dockerfile")) as handle:
        text = re.sub(r"\\\n", " ", handle.read())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            steps.append((keyword.upper(), rest.strip()))
    return steps


def image_facts(steps):
    user = [rest for key, rest in steps if key == "USER"][-1]
    env = {}
    for key, rest in steps:
        if key == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    copies = [rest.split() for key, rest in steps if key == "COPY"]
    entrypoint = [rest for key, rest in steps if key == "ENTRYPOINT"][-1]
    return user, env, copies, yaml.safe_load(entrypoint)


def check_dockerfile(steps):
    user, env, copies, entrypoint = image_facts(steps)
    problems = []
    uid = user.split(":")[0]
    if not uid.isdigit() or uid == "0":
        problems.append("USER must be a numeric non-root uid (runAsNonRoot checks it): %s" % user)
    for source, _ in copies:
        if not os.path.exists(os.path.join(ROOT, source)):
            problems.append("COPY source %s does not exist" % source)
    if entrypoint[0] not in [dest for _, dest in copies]:
        problems.append("ENTRYPOINT %s is not a copied file" % entrypoint[0])
    if env.get("PYTHONDONTWRITEBYTECODE") != "1" or env.get("HOME") != "/tmp":
        problems.append("a read-only root needs PYTHONDONTWRITEBYTECODE=1 and HOME=/tmp")
    check("Dockerfile: non-root numeric USER, COPY sources exist, read-only root ready",
          problems)
    check("Dockerfile: hadolint", run_tool(os.path.join(TOOLS, "hadolint"),
                                          os.path.join(ROOT, "packaging", "docker", "Dockerfile")))
    return int(uid) if uid.isdigit() else -1, env


def load_config_document(text):
    from tunnel_client.config.loader import read_yaml  # the schema the daemon applies
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as handle:
        handle.write(text)
        handle.flush()
        try:
            return read_yaml(handle.name)
        except Exception as exc:  # a ConfigError names the bad key
            raise ValueError(str(exc))


def check_manifest(path, uid, image_env, version):
    name = os.path.basename(path)
    with open(path) as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc]
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    problems = []
    for deploy in [d for d in docs if d["kind"] == "Deployment"]:
        pod = deploy["spec"]["template"]["spec"]
        (box,) = [c for c in pod["containers"] if c["name"] == "tunnel-client"]
        mounts = {m["name"]: m for m in box["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if box["image"] != "registry.example.com/tunnel-client:%s" % version:
            problems.append("image tag is not the project version %s: %s" % (version, box["image"]))
        probes = (box["livenessProbe"]["httpGet"]["path"], box["readinessProbe"]["httpGet"]["path"])
        if probes != ("/healthz", "/readyz"):
            problems.append("probes must be /healthz (liveness) and /readyz (readiness): %s"
                            % (probes,))
        sec = box["securityContext"]
        if not (pod["securityContext"].get("runAsNonRoot") and sec.get("readOnlyRootFilesystem")
                and sec.get("allowPrivilegeEscalation") is False
                and sec["capabilities"]["drop"] == ["ALL"] and sec.get("runAsUser") == uid):
            problems.append("tunnel-client container is not non-root uid %d, read-only, "
                            "no privilege escalation, no capabilities" % uid)
        if mounts.get("tmp", {}).get("mountPath") != image_env["HOME"]:
            problems.append("the image's HOME (%s) needs a writable emptyDir" % image_env["HOME"])
        config_path = box["args"][box["args"].index("--config") + 1]
        config_map = maps[volumes["config"]["configMap"]["name"]]
        if os.path.dirname(config_path) != mounts["config"]["mountPath"]:
            problems.append("--config %s is not under the ConfigMap mount" % config_path)
        text = config_map["data"][os.path.basename(config_path)]
        try:
            cfg = load_config_document(text)
        except ValueError as exc:
            problems.append("ConfigMap config.yaml is rejected by tunnel-client: %s" % exc)
            continue
        key_file = cfg["control_plane"]["api_key"][len("file:"):]
        if os.path.dirname(key_file) != mounts["api-key"]["mountPath"]:
            problems.append("api_key %s is not in the Secret mount" % key_file)
        port = int(cfg["health"]["listen_addr"].rsplit(":", 1)[1])
        if [p["containerPort"] for p in box["ports"] if p["name"] == "admin"] != [port]:
            problems.append("admin port %d is not the probes' port" % port)
        if pod.get("terminationGracePeriodSeconds", 30) <= 30:
            problems.append("terminationGracePeriodSeconds must exceed the 30s drain")
        urls = [entry["url"] for entry in cfg["mcp"]["server_urls"]]
        if name.startswith("sidecar") and not all("//127.0.0.1:" in u for u in urls):
            problems.append("a sidecar reaches its MCP server over the pod's loopback: %s" % urls)
        if name.startswith("dedicated") and deploy["spec"]["replicas"] < 2:
            problems.append("the dedicated deployment runs several replicas")
    check("kubernetes/%s: probes, security context, config, secret and port agree" % name,
          problems)


def main():
    version = project_version()
    uid, image_env = check_dockerfile(dockerfile())
    manifests = sorted(glob.glob(os.path.join(ROOT, "packaging", "kubernetes", "*.yaml")))
    check("kubernetes manifests validate (strict, Kubernetes 1.30)",
          run_tool(os.path.join(TOOLS, "kubernetes-validate"), "--strict", "--quiet",
                   "-k", "1.30.0", *manifests))
    for path in manifests:
        check_manifest(path, uid, image_env, version)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
