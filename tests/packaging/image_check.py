"""Build packaging/docker/Dockerfile without a container engine and run the result the
way Kubernetes would: as its numeric USER, on a read-only root with a writable /tmp.

The build runs the Dockerfile's RUN and COPY steps in a fresh chroot of the base image's
Debian release; the run bind-mounts that tree read-only and chroots into it.
Usage: image_check.py ROOT BUILD_DIR RO_DIR   (PASS/FAIL lines; exit 1 on a failure)
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request

ROOT, TREE, RO = sys.argv[1:4]
BASE_IMAGE = "debian:trixie-slim"  # the chroot is a debootstrap of this release
failures = []


def report(name, ok, detail=""):
    print("%s %s" % ("PASS" if ok else "FAIL", name))
    if not ok:
        failures.append(name)
        for line in str(detail).strip().splitlines()[-20:]:
            print("    | %s" % line)
    return ok


def instructions():
    with open(os.path.join(ROOT, "packaging", "docker", "Dockerfile")) as handle:
        text = handle.read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            yield keyword.upper(), rest.strip()


def build():
    """Run the steps; return (env, user, argv) of the image."""
    env, user, entrypoint, cmd = {}, "0", [], []
    for keyword, rest in instructions():
        if keyword == "FROM" and rest != BASE_IMAGE:
            raise RuntimeError("FROM %s, but this check builds on %s" % (rest, BASE_IMAGE))
        if keyword == "RUN":
            script = "".join("export %s=%s; " % (k, shlex.quote(v)) for k, v in env.items())
            subprocess.run(["chroot", TREE, "/bin/sh", "-ec", script + rest], check=True,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                "DEBIAN_FRONTEND": "noninteractive"},
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        elif keyword == "COPY":
            source, dest = rest.split()
            target = TREE + dest
            os.makedirs(os.path.dirname(target), exist_ok=True)
            subprocess.run(["cp", "-a", "--no-target-directory", os.path.join(ROOT, source),
                            target], check=True)
        elif keyword == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
        elif keyword == "USER":
            user = rest
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "CMD":
            cmd = json.loads(rest)
    return env, user, entrypoint + cmd


def in_image(user, env, argv, **kwargs):
    return subprocess.Popen(["chroot", "--userspec=" + user, RO] + argv, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, **kwargs)


def wait_for(predicate, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def run(env, user, argv):
    stub = "env PYTHONPATH=/usr/lib/tunnel-client python3 -m tunnel_client.devtools.stub"
    relay = in_image(user, env, ["/usr/bin/tunnel-client", "dev", "relay",
                                 "--url-file", "/tmp/relay.json"])
    daemon = None
    try:
        if not report("image: local control plane runs as %s on the read-only root" % user,
                      wait_for(lambda: os.path.exists(RO + "/tmp/relay.json"), 20)):
            return
        with open(RO + "/tmp/relay.json") as handle:
            details = json.load(handle)
        daemon_env = dict(env, CONTROL_PLANE_API_KEY=details["api_key"],
                          CONTROL_PLANE_TUNNEL_ID=details["tunnel_id"],
                          CONTROL_PLANE_BASE_URL=details["control_plane_base_url"],
                          MCP_COMMAND=stub, NO_PROXY="*",
                          # A free loopback port here; the image's 0.0.0.0:8080 is for pods.
                          HEALTH_LISTEN_ADDR="127.0.0.1:0", HEALTH_URL_FILE="/tmp/admin.url")
        daemon = in_image(user, daemon_env, argv)
        up = wait_for(lambda: os.path.exists(RO + "/tmp/admin.url") or daemon.poll() is not None, 30)
        if not report("image: %s starts as %s with a read-only root" % (" ".join(argv), user),
                      up and daemon.poll() is None, daemon.poll() is not None and daemon.stdout.read()):
            return
        with open(RO + "/tmp/admin.url") as handle:
            base = handle.read().strip()

        def probe(path):
            try:
                with urllib.request.urlopen(base + path, timeout=5) as reply:
                    return reply.status == 200
            except OSError:
                return False

        report("image: /healthz and /readyz answer 200",
               wait_for(lambda: probe("/healthz") and probe("/readyz"), 30))
        call = in_image(user, env, ["/usr/bin/tunnel-client", "dev", "call", details["mcp_url"],
                                    "tools/list"])
        output = call.communicate(timeout=60)[0]
        report("image: tools/list through the tunnel", call.returncode == 0, output)
        daemon.send_signal(signal.SIGTERM)
        try:
            status = daemon.wait(timeout=40)
        except subprocess.TimeoutExpired:
            status = None
        report("image: SIGTERM stops it with exit 0", status == 0, "exit status %s" % status)
    finally:
        for proc in (daemon, relay):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def main():
    try:
        env, user, argv = build()
        report("image: Dockerfile steps build on %s" % BASE_IMAGE, True)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        report("image: Dockerfile steps build on %s" % BASE_IMAGE, False,
               getattr(exc, "stdout", None) or exc)
        sys.exit(1)
    os.makedirs(RO, exist_ok=True)
    steps = [(["mount", "--bind", TREE, RO], RO),
             (["mount", "-o", "remount,bind,ro", RO], None),
             (["mount", "-t", "proc", "proc", RO + "/proc"], RO + "/proc"),
             (["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs", RO + "/tmp"], RO + "/tmp")]
    mounted = []
    try:
        for command, point in steps:
            subprocess.run(command, check=True)
            if point:
                mounted.append(point)
        writable = subprocess.run(["chroot", RO, "/bin/sh", "-c", "touch /.probe"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        report("image: the root filesystem of this run is read-only", writable.returncode != 0)
        # Docker's default PATH, since the image sets none of its own.
        run(dict(env, PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            user, argv)
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", point], check=False)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
