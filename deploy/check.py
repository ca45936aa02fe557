#!/usr/bin/env python3
"""Offline consistency check of the deployment files (no cluster, no docker daemon needed).

    python3 deploy/check.py [path/to/fastway]

Checks that every Kubernetes manifest parses, that the Deployment, the client Service and the headless
server Service select the same pods and name ports the container really has, that the headless Service
is headless, that the Secret key the Deployment reads exists, that the ConfigMap's fastway.toml parses
and listens on the ports the Services use, and that the Dockerfile exposes those ports. Given the
fastway binary, it also checks that every key of fastway.toml is a flag of that binary (`--help`).
Needs Python 3.11+ (tomllib) and PyYAML. Exits 1 with one line per problem.
"""

import pathlib
import re
import subprocess
import sys
import tomllib

import yaml

HERE = pathlib.Path(__file__).resolve().parent
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def load_manifests():
    by_kind = {}
    for path in sorted((HERE / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            check("kind" in doc and "apiVersion" in doc, f"{path.name}: no kind/apiVersion")
            by_kind.setdefault(doc.get("kind"), []).append(doc)
    return by_kind


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def main():
    kinds = load_manifests()
    (deployment,) = kinds["Deployment"]
    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    (configmap,) = kinds["ConfigMap"]
    (secret,) = kinds["Secret"]

    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    check(deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(),
          "Deployment selector does not match its pod labels")
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    for name, want_headless in [("fastway-clients", False), ("fastway-servers", True)]:
        service = services.get(name)
        check(service is not None, f"Service {name} missing")
        if service is None:
            continue
        spec = service["spec"]
        check(spec["selector"].items() <= labels.items(), f"{name} selects no gateway pod")
        check((spec.get("clusterIP") == "None") == want_headless,
              f"{name}: headless must be {want_headless}")
        for port in spec["ports"]:
            check(port["targetPort"] in ports, f"{name}: targetPort {port['targetPort']} not in the pod")
    check(services["fastway-servers"]["spec"]["ports"][0]["targetPort"] == "server",
          "the headless Service must point at the server port")
    check(services["fastway-clients"]["spec"]["ports"][0]["targetPort"] == "client",
          "the client Service must point at the client port")

    for probe in ("readinessProbe", "livenessProbe"):
        target = container[probe]["tcpSocket"]["port"]
        check(target in ports, f"{probe} probes unknown port {target}")

    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            check(ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys,
                  f"env {env['name']} reads a missing secret key {ref}")

    config_volume = [v for v in pod["spec"]["volumes"] if "configMap" in v]
    check(config_volume and config_volume[0]["configMap"]["name"] == configmap["metadata"]["name"],
          "the Deployment does not mount the ConfigMap")
    args = container["args"]
    mount = [m for m in container["volumeMounts"] if m["name"] == config_volume[0]["name"]][0]
    check(args[args.index("--config") + 1] == f"{mount['mountPath']}/fastway.toml",
          "--config does not point into the ConfigMap mount")

    toml = tomllib.loads(configmap["data"]["fastway.toml"])
    check(port_of(toml["client-addr"]) == ports["client"], "client-addr port != containerPort client")
    check(port_of(toml["server-addr"]) == ports["server"], "server-addr port != containerPort server")
    check(toml["client-addr"].startswith("0.0.0.0:") and toml["server-addr"].startswith("0.0.0.0:"),
          "inside a pod the gateway must listen on 0.0.0.0")
    check("server-auth-key" not in toml, "the auth key belongs in the Secret, not the ConfigMap")

    dockerfile = (HERE / "docker" / "Dockerfile").read_text()
    exposed = set(re.search(r"^EXPOSE (.+)$", dockerfile, re.M).group(1).split())
    check(exposed == {str(ports["client"]), str(ports["server"])}, f"Dockerfile EXPOSE {exposed}")

    if len(sys.argv) > 1:
        help_text = subprocess.run([sys.argv[1], "--help"], capture_output=True, text=True,
                                   check=True).stdout
        for key in toml:
            check(f"--{key}" in help_text, f"fastway.toml key {key!r} is not a flag of {sys.argv[1]}")

    for problem in problems:
        print(f"deploy/check.py: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("deploy/check.py: Kubernetes manifests, ConfigMap and Dockerfile are consistent")


if __name__ == "__main__":
    main()
