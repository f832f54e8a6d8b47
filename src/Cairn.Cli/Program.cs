using System.CommandLine;
using Cairn.Cli;
using Cairn.Cli.Commands;

var root = new RootCommand("cairn: build, test and distribute scientific software stacks from a content-addressed repository");
root.Options.Add(GlobalOptions.Repo);
root.Options.Add(GlobalOptions.Proxy);
root.Options.Add(GlobalOptions.HttpTimeout);
root.Options.Add(GlobalOptions.HttpDeadline);
root.Options.Add(GlobalOptions.LowSpeedLimit);
root.Options.Add(GlobalOptions.SigningKey);
root.Options.Add(GlobalOptions.Trust);
root.Options.Add(GlobalOptions.Json);
root.Options.Add(GlobalOptions.Verbose);
root.Options.Add(GlobalOptions.LockTimeout);
foreach (var command in CommandCatalog.All())
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync();
