using System.CommandLine;
using Cairn.Core;

namespace Cairn.Cli.Commands;

public static class CommandCatalog
{
    public static IEnumerable<Command> All() =>
    [
        Init.InitCommand.Create(),
        Publish.PublishCommand.Create(),
        List.ListCommand.Create(),
        Show.ShowCommand.Create(),
        Materialize.MaterializeCommand.Create(),
        Export.ExportCommand.Create(),
        Import.ImportCommand.Create(),
        Verify.VerifyCommand.Create(),
        Attest.AttestCommand.Create(),
        Gc.GcCommand.Create(),
        History.HistoryCommand.Create(),
        Rollback.RollbackCommand.Create(),
        Tag.TagCommand.Create(),
        Serve.ServeCommand.Create(),
        Replicate.ReplicateCommand.Create(),
        Plan.PlanCommand.Create(),
        Build.BuildCommand.Create(),
        Challenge.ChallengeCommand.Create(),
        Mount.MountCommand.Create(),
        Unmount.UnmountCommand.Create(),
        Key.KeyCommand.Create(),
        Gateway.GatewayCommand.Create(),
        Coherence.CoherenceCommand.Create(),
        RecipeImport.RecipeCommand.Create(),
        Log.LogCommand.Create(),
    ];

    /// <summary>Runs a command body with the shared error handling: coded errors print what/why/what-to-do and map to documented exit codes.</summary>
    public static void SetHandler(this Command command, Func<CliContext, CancellationToken, Task<int>> body) =>
        command.SetAction(async (parse, ct) =>
        {
            using var context = new CliContext(parse, Console.Out, Console.Error);
            try
            {
                return await body(context, ct);
            }
            catch (CairnException e)
            {
                Report(context, e.CodeName, e.Message, e.Hint);
                return ErrorCodes.ExitCode(e.Code);
            }
            catch (OperationCanceledException)
            {
                context.Error.WriteLine("cairn: cancelled");
                return 130;
            }
            catch (IOException e)
            {
                Report(context, ErrorCodes.Name(ErrorCode.IoError), e.Message, "check the path, permissions and free space");
                return ErrorCodes.ExitCode(ErrorCode.IoError);
            }
            catch (UnauthorizedAccessException e)
            {
                Report(context, ErrorCodes.Name(ErrorCode.IoError), e.Message, "check permissions");
                return ErrorCodes.ExitCode(ErrorCode.IoError);
            }
        });

    private static void Report(CliContext context, string code, string message, string? hint)
    {
        if (context.Json)
        {
            context.Out.WriteLine(System.Text.Encoding.UTF8.GetString(CairnJson.SerializeIndented(new ErrorOutput(new ErrorDetail(code, message, hint)), CliJson.Default.ErrorOutput)));
        }

        context.Error.WriteLine($"cairn: error {code}: {message}");
        if (hint is not null) context.Error.WriteLine($"  hint: {hint}");
    }
}

/// <summary>What a failed command prints with --json: <c>{ "error": { "code", "message", "hint" } }</c> (no hint: left out).</summary>
public sealed record ErrorOutput(ErrorDetail Error);

public sealed record ErrorDetail(string Code, string Message, string? Hint);
