#!/usr/bin/env python3
"""Independent checks of what `aibox mcp` writes.

  mcp_check.py tools FILE [KEY...]   start every server of an mcpServers-style file (the entries
                                     under KEY..., default mcpServers) with the official MCP
                                     Python SDK, the way an agent does; print {name: tool count}
  mcp_check.py parse FORMAT FILE     read a config with its format's own parser (json, jsonc via
                                     json5, toml via tomllib, yaml via PyYAML); print it as JSON
"""
import asyncio
import json
import sys
import tomllib



async def count_tools(entry):
    from mcp import ClientSession, StdioServerParameters  # slow to import: only when needed
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=entry["command"], args=entry.get("args", []), env=entry.get("env"))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await asyncio.wait_for(session.initialize(), 60)
            result = await asyncio.wait_for(session.list_tools(), 60)
            return len(result.tools)


async def tools(path, keys):
    with open(path) as f:
        config = json.load(f)
    for key in keys or ["mcpServers"]:
        config = config[key]
    out = {}
    for name, entry in config.items():
        out[name] = await count_tools(entry)
    return out


def parse(fmt, path):
    with open(path, "rb") as f:
        data = f.read()
    text = data.decode("utf-8-sig")
    if fmt == "json":
        return json.loads(text)
    if fmt == "jsonc":
        import json5

        return json5.loads(text)
    if fmt == "toml":
        return tomllib.loads(text)
    if fmt == "yaml":
        import yaml

        return yaml.safe_load(text)
    raise SystemExit(f"unknown format {fmt}")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "tools":
        print(json.dumps(asyncio.run(tools(sys.argv[2], sys.argv[3:]))))
    elif len(sys.argv) == 4 and sys.argv[1] == "parse":
        print(json.dumps(parse(sys.argv[2], sys.argv[3]), default=str))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
