"""``tunnel-client init``: write a first profile from a sample, then say what to run."""

import os

from tunnel_client.config import profiles, samples
from tunnel_client.config.values import split_command
from tunnel_client.errors import ConfigError


def add_parser(sub):
    parser = sub.add_parser(
        "init", help="create a profile from a sample and print the next commands",
        description="Create a validated profile (mode 0600) from one of the built-in samples. "
                    "The API key is never written to it: the profile refers to "
                    "env:CONTROL_PLANE_API_KEY.")
    # The run spellings (--control-plane.tunnel-id, --mcp.command...) are accepted too.
    parser.add_argument("--tunnel-id", "--control-plane.tunnel-id",
                        help="the tunnel to serve (tunnel_...)")
    parser.add_argument("--profile", default=None,
                        help="profile name [default: the sample's name]")
    parser.add_argument("--sample", choices=sorted(samples.SAMPLES),
                        help="sample to start from [default: sample_mcp_remote_no_auth when "
                             "only --mcp-server-url is given, else sample_mcp_stdio_local]")
    parser.add_argument("--profile-dir", "--profile.dir", help="where profiles live")
    parser.add_argument("--force", action="store_true", help="replace an existing profile")
    parser.add_argument("--control-plane-base-url", "--control-plane.base-url",
                        help="control-plane base URL")
    parser.add_argument("--control-plane-url-path", "--control-plane.url-path",
                        help="path prefix before /v1/...")
    parser.add_argument("--control-plane-api-key-ref", default="env:CONTROL_PLANE_API_KEY",
                        help="where the key comes from: env:VAR or file:PATH "
                             "[default %(default)s]")
    parser.add_argument("--mcp-server-url", "--mcp.server-url",
                        help="Streamable HTTP MCP server URL")
    parser.add_argument("--mcp-command", "--mcp.command", help="stdio MCP server command")
    parser.add_argument("--health-listen-addr", "--health.listen-addr", default="127.0.0.1:8080",
                        help="admin listener [default %(default)s]")
    parser.add_argument("--open-web-ui", action="store_true",
                        help="open the admin UI at start (desktops)")
    parser.add_argument("--no-start-check", action="store_true",
                        help="do not start the stdio MCP command once (spawn, initialize, "
                             "stop) before writing the profile")
    parser.set_defaults(func=run)


def run(args) -> int:
    from tunnel_client.doctor import executable

    if not args.tunnel_id:
        raise ConfigError("--tunnel-id is required: copy the tunnel id (tunnel_...) from the "
                          "tunnel settings page, or create one first")
    if args.mcp_command and args.mcp_server_url:
        raise ConfigError("give --mcp-command or --mcp-server-url, not both")
    if not args.control_plane_api_key_ref.lower().startswith(("env:", "file:")):
        raise ConfigError("--control-plane-api-key-ref must be env:VAR or file:PATH; the key "
                          "itself never goes into a profile")
    name = args.sample or samples.default_sample(args.mcp_command, args.mcp_server_url)
    sample = samples.SAMPLES[name]
    if sample.transport == "stdio" and args.mcp_server_url:
        raise ConfigError("sample %s runs a stdio command; use --mcp-command" % name)
    if sample.transport == "http" and args.mcp_command:
        raise ConfigError("sample %s talks to an HTTP server; use --mcp-server-url" % name)
    if sample.transport == "stdio" and not args.mcp_command:
        raise ConfigError("sample %s needs --mcp-command (the MCP server command to run)"
                          % name)
    if sample.transport == "http" and not args.mcp_server_url:
        raise ConfigError("sample %s needs --mcp-server-url (the MCP server's URL)" % name)
    if args.mcp_command:
        try:
            ok, evidence = executable.check(split_command(args.mcp_command), os.environ)
        except ValueError as exc:
            raise ConfigError("mcp-command: %s" % exc) from None
        if not ok:
            raise ConfigError("mcp-command preflight failed: %s" % evidence[0])
        if not args.no_start_check:
            from tunnel_client.doctor import startcheck
            from tunnel_client.mcp.stdio import child_environment
            started = startcheck.check(split_command(args.mcp_command),
                                       child_environment(os.environ))
            if not started.ok:
                raise ConfigError("mcp-command did not start: %s (run it by hand to see why, "
                                  "or pass --no-start-check)" % started.summary)
            print("MCP command: %s" % started.summary)
    profile = args.profile or name
    profiles.check_profile_name(profile)
    text = samples.render(name, {
        "profile": profile, "tunnel_id": args.tunnel_id,
        "base_url": args.control_plane_base_url, "url_path": args.control_plane_url_path,
        "api_key_ref": args.control_plane_api_key_ref, "mcp_command": args.mcp_command,
        "mcp_server_url": args.mcp_server_url, "health_listen_addr": args.health_listen_addr,
        "open_browser": args.open_web_ui})
    note = profiles.validate_text(text, os.environ)
    directory = profiles.profile_dir(args.profile_dir, os.environ)
    path = profiles.write_profile(directory, profile, text, args.force)
    selector = "--profile %s" % profile + (" --profile-dir %s" % args.profile_dir
                                           if args.profile_dir else "")
    key_ref = args.control_plane_api_key_ref
    print("Created profile %s at %s" % (profile, path))
    print("Sample: %s (%s)" % (name, sample.summary))
    if note and '"%s"' % key_ref[4:].strip() not in note:
        print("Note: %s" % note)
    print("Next:")
    if key_ref.lower().startswith("env:"):
        print("  export %s=...        # a runtime key with tunnel use permission"
              % key_ref[4:].strip())
    print("  tunnel-client doctor %s --offline   # check the profile and the MCP target"
          % selector)
    print("  tunnel-client doctor %s             # also check the control plane, live"
          % selector)
    print("  tunnel-client run %s" % selector)
    return 0
