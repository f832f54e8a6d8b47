using System.Text.Json;
using Cairn.Build.Coordinated;
using Cairn.Build.Recipes;
using Cairn.Core;
using Cairn.Repository;
using Cairn.Sandbox;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cairn.Build;

/// <summary>
/// Builds a recipes directory into a repository: in dependency order, each package whose build key has no product
/// yet is unpacked, built and checked in fresh sandboxes that see only the tested products of its dependencies,
/// and published (with its modulefile and build log, in one revision) only when the check passes. A failure
/// publishes nothing and blocks everything downstream. See docs/recipes.md, "Building a stack".
/// </summary>
public sealed partial class StackBuilder(ProductRepository repository, ISandbox sandbox, TimeProvider time, ILogger? logger = null)
{
    /// <summary>Top-level directory of build logs in the repository tree.</summary>
    public const string LogsDirectory = "logs";

    /// <summary>Transient build directories inside <see cref="StackOptions.BuildsDirectory"/>.</summary>
    public const string WorkFolder = ".work";

    private readonly ILogger _log = logger ?? NullLogger.Instance;

    // The host's os-release, read once rather than once per package (cairn plan decides thousands).
    private readonly Lazy<Platform> _hostPlatform = new(() => Platform.Detect());

    private sealed record Stack(RecipeGraph Graph, string Platform, SourceResolver Sources, StackOptions Options);

    /// <summary>The package's decision: up to date, or build with this key (replacing <see cref="Existing"/>).</summary>
    private sealed record Decision(Digest Key, ProductRecord? Existing, IReadOnlyList<string> SourceFiles, Platform Platform, ProductRecord? Environment)
    {
        /// <summary>The dependency products (transitive) the build mounts, for its provenance.</summary>
        public IReadOnlyDictionary<string, ProductRecord> DependencyProducts { get; init; } = new Dictionary<string, ProductRecord>();

        public bool UpToDate => Existing?.BuildKey == Key.ToString();
    }

    public static string LogPathInTree(string platform, string name, string version) => $"{LogsDirectory}/{platform}/{name}/{version}/build.log";

    private Stack Load(StackOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Jobs < 1) throw new CairnException(ErrorCode.Usage, "--jobs must be at least 1");
        DeploymentLayout.Validate(options.DeploymentRoot, options.DeploymentSite);
        var graph = RecipeGraph.Load(options.RecipesDirectory);
        if (options.Only.Count > 0) graph = graph.Only(options.Only);
        var platform = options.Platform ?? repository.DefaultPlatform;
        Platforms.Validate(platform);
        var sources = new SourceResolver([SourceResolver.DefaultDirectory(options.RecipesDirectory), .. options.SourceDirectories]);
        return new Stack(graph, platform, sources, options);
    }

    /// <summary>What <see cref="BuildAsync"/> would do, and why, without building anything.</summary>
    public async Task<BuildPlan> PlanAsync(StackOptions options, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var stack = Load(options);
        var loaded = time.GetTimestamp();
        var catalog = await repository.CatalogAsync(await repository.HeadAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        var read = time.GetTimestamp();
        var entries = new Dictionary<string, PlanEntry>(StringComparer.Ordinal);
        var result = new List<PlanEntry>();
        var unsettled = 0; // entries so far that block or delay what depends on them: none, and no scan is needed
        foreach (var recipe in stack.Graph.TopologicalOrder)
        {
            var deps = stack.Graph.TransitiveDependencies(recipe.Name);
            List<string> failing = unsettled == 0 ? [] : [.. deps.Where(d => entries[d.Name].Action == PlanAction.Error).Select(d => d.Name)];
            List<string> waits = unsettled == 0 ? [] : [.. deps.Where(d => entries[d.Name].Action is PlanAction.Build or PlanAction.After).Select(d => d.Name)];
            PlanEntry entry;
            if (await ProvidedEntryAsync(stack.Options, stack.Platform, recipe, ct).ConfigureAwait(false) is { } provided)
            {
                entry = provided;
            }
            else if (failing.Count > 0)
            {
                entry = new PlanEntry(recipe.Name, recipe.Version, PlanAction.Blocked, $"blocked by {string.Join(", ", failing)}",
                    Code: ErrorCodes.Name(ErrorCode.BuildBlocked));
            }
            else if (waits.Count > 0)
            {
                entry = new PlanEntry(recipe.Name, recipe.Version, PlanAction.After,
                    $"after {string.Join(", ", waits)}: the build key needs {(waits.Count == 1 ? "its new product" : "their new products")}", Waits: waits);
            }
            else
            {
                try
                {
                    var products = await DependencyRecordsAsync(stack.Options, stack.Platform, recipe, deps, catalog, ct).ConfigureAwait(false);
                    var decision = await DecideAsync(stack, recipe, products, catalog, ct).ConfigureAwait(false);
                    entry = decision.UpToDate
                        ? new PlanEntry(recipe.Name, recipe.Version, PlanAction.UpToDate, "up to date", decision.Key.ToString(), decision.Existing!.BuildKey)
                        : new PlanEntry(recipe.Name, recipe.Version, PlanAction.Build, BuildReason(decision) + LastFailure(stack, recipe, decision.Key),
                            decision.Key.ToString(), decision.Existing?.BuildKey);
                }
                catch (CairnException e)
                {
                    entry = new PlanEntry(recipe.Name, recipe.Version, PlanAction.Error, Describe(e), Code: e.CodeName);
                }
            }

            entries[recipe.Name] = entry;
            result.Add(entry);
            if (entry.Action is PlanAction.Error or PlanAction.Build or PlanAction.After) unsettled++;
        }

        // Where planning's time goes (cairn -v plan), for docs/performance.md's planning figures.
        _log.LogInformation("plan: {Recipes} recipes loaded in {LoadMs:0} ms, catalog of {Products} products read in {CatalogMs:0} ms, decided in {DecideMs:0} ms",
            stack.Graph.Count, time.GetElapsedTime(started, loaded).TotalMilliseconds, catalog.Products.Count,
            time.GetElapsedTime(loaded, read).TotalMilliseconds, time.GetElapsedTime(read).TotalMilliseconds);
        return new BuildPlan(stack.Platform, options.DeploymentSite, options.DeploymentRoot, result);
    }

    /// <summary>Builds what is not up to date. Failures are results, not exceptions; cancellation throws.</summary>
    public async Task<StackBuildResult> BuildAsync(StackOptions options, IBuildMonitor? monitor, CancellationToken ct)
    {
        var stack = Load(options);
        var started = time.GetTimestamp();
        var stop = 0;
        using var slots = new SemaphoreSlim(options.Jobs);
        var tasks = new Dictionary<string, Task<PackageResult>>(StringComparer.Ordinal);
        foreach (var recipe in stack.Graph.TopologicalOrder)
        {
            var deps = stack.Graph.DirectDependencies(recipe.Name).Select(d => tasks[d.Name]).ToArray();
            tasks[recipe.Name] = RunAsync(recipe, deps);
        }

        async Task<PackageResult> RunAsync(Recipe recipe, Task<PackageResult>[] deps)
        {
            await Task.Yield();
            var depResults = await Task.WhenAll(deps).ConfigureAwait(false);
            PackageResult result;
            if (depResults.Where(d => !d.Ok).ToList() is { Count: > 0 } bad)
            {
                var roots = bad.SelectMany(d => d.Status == PackageStatus.Blocked ? d.BlockedBy : d.Status == PackageStatus.Failed ? [d.Name] : [])
                    .Distinct().Order(StringComparer.Ordinal).ToList();
                result = roots.Count == 0
                    ? NotStarted(recipe)
                    : new PackageResult
                    {
                        Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.Blocked, BlockedBy = roots,
                        Reason = $"blocked by {string.Join(", ", roots)}", Code = ErrorCodes.Name(ErrorCode.BuildBlocked),
                    };
            }
            else
            {
                await slots.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    result = Volatile.Read(ref stop) != 0 ? NotStarted(recipe) : await BuildOneAsync(stack, recipe, monitor, ct).ConfigureAwait(false);
                }
                finally
                {
                    slots.Release();
                }

                if (result.Status == PackageStatus.Failed && !options.KeepGoing) Volatile.Write(ref stop, 1);
            }

            monitor?.Finished(result);
            return result;
        }

        var results = await Task.WhenAll(tasks.Values).ConfigureAwait(false);
        return new StackBuildResult(stack.Platform, results, time.GetElapsedTime(started));
    }

    private static PackageResult NotStarted(Recipe recipe) => new()
    {
        Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.NotStarted,
        Reason = "not started: an earlier package failed (--keep-going builds what does not depend on it)",
    };

    /// <summary>
    /// Catalog.Find scans the list; planning looks up every transitive dependency of every recipe, which made
    /// `cairn plan` over 2,000 recipes quadratic in the catalog. One index per catalog instance instead.
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Catalog, Dictionary<(string, string, string), ProductRecord>> Indexes = new();

    private static ProductRecord? Find(Catalog catalog, string platform, Recipe recipe) =>
        Indexes.GetValue(catalog, c => c.Products.GroupBy(p => (p.Platform, p.Name, p.Version)).ToDictionary(g => g.Key, g => g.First()))
            .GetValueOrDefault((platform, recipe.Name, recipe.Version));

    private static string Describe(CairnException e) => e.Hint is null ? e.Message : $"{e.Message} ({e.Hint})";

    private static string BuildReason(Decision d) => d.Existing is null
        ? "not published yet"
        : $"build key changed (published {d.Existing.BuildKey![..12]}, now {d.Key.ToString()[..12]}): the rebuild replaces it, recorded";

    /// <summary>Everything that decides whether a package is up to date. Throws for what prevents building it.</summary>
    private async Task<Decision> DecideAsync(Stack stack, Recipe recipe, IReadOnlyDictionary<string, ProductRecord> deps, Catalog catalog, CancellationToken ct)
    {
        var (environment, platform) = await EnvironmentAsync(stack, recipe, catalog, ct).ConfigureAwait(false);
        var sources = recipe.Sources.Select(s => stack.Sources.Resolve(recipe, s)).ToList();
        ModuleFile.Validate(recipe);
        var key = BuildKey.Compute(stack.Graph, recipe,
            new BuildKeyInputs(platform, new DeploymentLayout(stack.Options.DeploymentRoot, stack.Options.DeploymentSite, platform).Deployment, deps.ToDictionary(kv => kv.Key, kv => kv.Value.Root, StringComparer.Ordinal), environment?.Root));
        var existing = Find(catalog, stack.Platform, recipe);
        var decision = new Decision(key, existing, sources, platform, environment) { DependencyProducts = deps };
        if (existing is null || decision.UpToDate) return decision;
        if (existing.BuildKey is null)
        {
            throw new CairnException(ErrorCode.BuildProductConflict,
                $"{recipe.Id} ({stack.Platform}) is published without a build key (by hand or imported); cairn build does not replace it",
                "give the recipe a new version, or replace the product by hand with 'cairn publish --replace --reason'");
        }

        if (stack.Options.WhenKeyChanged == ChangedKeyPolicy.Refuse)
        {
            throw new CairnException(ErrorCode.BuildProductConflict,
                $"{recipe.Id} ({stack.Platform}) is published with build key {existing.BuildKey[..12]}, but its inputs now give {key.ToString()[..12]}, and --no-replace is set",
                "give the recipe a new version, or build without --no-replace to rebuild and replace it (recorded)");
        }

        return decision;
    }

    /// <summary>The build environment product (a root file system), if the recipe names one, and the platform it gives.</summary>
    private async Task<(ProductRecord? Record, Platform Platform)> EnvironmentAsync(Stack stack, Recipe recipe, Catalog catalog, CancellationToken ct)
    {
        if (recipe.BuildEnvironment is not { } name) return (null, _hostPlatform.Value);
        var candidates = catalog.Products.Where(p => p.Platform == stack.Platform &&
            (name.Contains('/', StringComparison.Ordinal) ? $"{p.Name}/{p.Version}" == name : p.Name == name)).ToList();
        if (candidates.Count != 1)
        {
            throw new CairnException(ErrorCode.BuildEnvironmentMissing,
                candidates.Count == 0
                    ? $"{recipe.File}: the build environment '{name}' is not published for {stack.Platform}"
                    : $"{recipe.File}: the build environment '{name}' is ambiguous: {string.Join(", ", candidates.Select(c => c.Ref))}",
                candidates.Count == 0 ? "import a root file system as that product (scripts/make-rootfs.sh, then cairn import ROOTFS.tar.zst --rootfs --as NAME/VERSION)" : "name it as NAME/VERSION");
        }

        // The platform comes from the environment's own os-release, read from the repository without unpacking it.
        var env = candidates[0];
        foreach (var path in new[] { "etc/os-release", "usr/lib/os-release" })
        {
            if (await repository.Trees.LookupAsync(env.Root, path, ct).ConfigureAwait(false) is not { IsFile: true } file) continue;
            using var buffer = new MemoryStream();
            await repository.Trees.CopyContentAsync(file, buffer, ct).ConfigureAwait(false);
            var scratch = Directory.CreateTempSubdirectory("cairn-osrelease-");
            try
            {
                Directory.CreateDirectory(Path.Combine(scratch.FullName, "etc"));
                await File.WriteAllBytesAsync(Path.Combine(scratch.FullName, "etc", "os-release"), buffer.ToArray(), ct).ConfigureAwait(false);
                return (env, Platform.Detect(scratch.FullName));
            }
            finally
            {
                scratch.Delete(recursive: true);
            }
        }

        throw new CairnException(ErrorCode.BuildEnvironmentMissing, $"{recipe.File}: the build environment {env.Ref} has no etc/os-release; it is not a root file system");
    }

    private string LastFailure(Stack stack, Recipe recipe, Digest key)
    {
        var dir = Path.Combine(stack.Options.BuildsDirectory, recipe.Name, recipe.Version);
        if (!Directory.Exists(dir)) return "";
        foreach (var record in Directory.GetDirectories(dir).Order(StringComparer.Ordinal).Reverse())
        {
            try
            {
                var failure = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(record, "build.json")), BuildJson.Default.FailureRecord);
                if (failure?.BuildKey == key.ToString()) return $"; the last build with this key failed ({failure.Reason}), log: {Path.Combine(record, "build.log")}";
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                _log.LogDebug(e, "ignoring unreadable build record {Record}", record);
            }
        }

        return "";
    }

    /// <summary>One package: resolve its inputs, take its job, build and check it, publish it or keep the failure.</summary>
    private async Task<PackageResult> BuildOneAsync(Stack stack, Recipe recipe, IBuildMonitor? monitor, CancellationToken ct)
    {
        var started = time.GetTimestamp();
        var startedAt = time.GetUtcNow();
        var target = stack.Options.PublishTarget ?? (repository is WritableRepository writable ? new LocalPublishTarget(writable)
            : throw new CairnException(ErrorCode.RemoteReadOnly, "the repository built into is read-only here", "build into a directory or s3:// repository, or through a gateway"));
        await target.RefreshAsync(ct).ConfigureAwait(false);
        var catalog = await repository.CatalogAsync(await repository.HeadAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        var deps = stack.Graph.TransitiveDependencies(recipe.Name);
        if (await ProvidedResultAsync(stack.Options, stack.Platform, recipe, started, ct).ConfigureAwait(false) is { } provided) return provided;
        Decision decision;
        Dictionary<string, ProductRecord> products;
        try
        {
            products = await DependencyRecordsAsync(stack.Options, stack.Platform, recipe, deps, catalog, ct).ConfigureAwait(false);
            decision = await DecideAsync(stack, recipe, products, catalog, ct).ConfigureAwait(false);
        }
        catch (CairnException e)
        {
            return Failed(recipe, e.Code, Describe(e), null, time.GetElapsedTime(started), null);
        }

        JobTicket job;
        try
        {
            job = await target.AcquireAsync(new JobContext(recipe, stack.Platform, decision.Key, decision.UpToDate, decision.Existing, decision.Environment),
                monitor, ct).ConfigureAwait(false);
        }
        catch (CairnException e)
        {
            return Failed(recipe, e.Code, Describe(e), decision.Key, time.GetElapsedTime(started), null);
        }

        await using var claimed = job;
        if (job.Action == JobAction.Skip) return Skipped(recipe, decision, job, started);
        var build = StartBuild(stack, recipe, decision, products, deps, job, monitor, started, startedAt);
        var result = await RunBuildAsync(build, target, monitor, ct).ConfigureAwait(false);
        return Finish(build, result);
    }

    /// <summary>
    /// One package's build once its job is taken: its inputs, its work directory and log, and the phase it is in,
    /// which a failure names.
    /// </summary>
    private sealed record PackageBuild(Stack Stack, Recipe Recipe, Decision Decision, IReadOnlyDictionary<string, ProductRecord> Products,
        IReadOnlyList<Recipe> Dependencies, JobTicket Job, string Why, string Work, DeploymentLayout Layout, long Started, DateTimeOffset StartedAt)
    {
        public string LogFile => Path.Combine(Work, "build.log");

        public string Phase { get; set; } = "prepare";
    }

    private PackageResult Skipped(Recipe recipe, Decision decision, JobTicket job, long started)
    {
        var current = decision.UpToDate ? decision.Existing : null;
        return new PackageResult
        {
            Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.UpToDate, Reason = job.Reason ?? "up to date",
            BuildKey = decision.Key.ToString(), Product = job.PublishedRoot ?? current?.Root, Tests = current?.Tests,
            RepositoryLog = current?.Log, Duration = time.GetElapsedTime(started), Job = job.SkipOutcome,
        };
    }

    private PackageBuild StartBuild(Stack stack, Recipe recipe, Decision decision, IReadOnlyDictionary<string, ProductRecord> products, IReadOnlyList<Recipe> deps,
        JobTicket job, IBuildMonitor? monitor, long started, DateTimeOffset startedAt)
    {
        var why = job.Reason ?? BuildReason(decision);
        monitor?.Started(recipe, why);
        _log.LogInformation("building {Recipe}: {Reason}", recipe.Id, why);
        var work = Directory.CreateDirectory(Path.Combine(stack.Options.BuildsDirectory, WorkFolder, $"{recipe.Name}-{recipe.Version}-{Guid.NewGuid():N}")).FullName;
        var layout = new DeploymentLayout(stack.Options.DeploymentRoot, stack.Options.DeploymentSite, decision.Platform);
        return new PackageBuild(stack, recipe, decision, products, deps, job, why, work, layout, started, startedAt);
    }

    /// <summary>Runs the build; a failure (or a lost claim) becomes the result, cancellation keeps the work and throws.</summary>
    private async Task<PackageResult> RunBuildAsync(PackageBuild build, IPublishTarget target, IBuildMonitor? monitor, CancellationToken caller)
    {
        var (recipe, decision, job) = (build.Recipe, build.Decision, build.Job);
        PackageResult? result = null;
        try
        {
            // From here on the build runs under the job's token: a lost claim (gateway) stops it as Ctrl-C would.
            result = await BuildLoggedAsync(build, target, monitor, caller, job.Token).ConfigureAwait(false);
        }
        catch (CairnException e)
        {
            result = Failed(recipe, e.Code, $"{build.Phase}: {Describe(e)}", decision.Key, time.GetElapsedTime(build.Started), null);
            AppendToLog(build.LogFile, $"== FAILED: {result.Reason}; nothing is published");
        }
        catch (OperationCanceledException) when (job.IsLost && !caller.IsCancellationRequested)
        {
            result = Failed(recipe, ErrorCode.ClaimLost, $"{build.Phase}: the claim was lost, so the build stopped and nothing is published: {job.LostReason}",
                decision.Key, time.GetElapsedTime(build.Started), null);
            AppendToLog(build.LogFile, $"== FAILED: {result.Reason}");
        }
        catch (OperationCanceledException)
        {
            AppendToLog(build.LogFile, "== cancelled; nothing is published");
            KeepFailure(build.Stack, recipe, decision.Key, "cancelled", null, build.Work, build.StartedAt);
            throw;
        }
        finally
        {
            if (result is not { Status: PackageStatus.Failed } || !build.Stack.Options.KeepFailedWork)
            {
                DeleteTree(Path.Combine(build.Work, "workspace"));
                DeleteTree(Path.Combine(build.Work, "prefix"));
                DeleteTree(Path.Combine(build.Work, "deps"));
                DeleteTree(Path.Combine(build.Work, "environment"));
            }
        }

        return result;
    }

    /// <summary>Prepares the inputs, runs the phases, reads the test reports, then publishes or reports the failure; all into build.log.</summary>
    private async Task<PackageResult> BuildLoggedAsync(PackageBuild build, IPublishTarget target, IBuildMonitor? monitor, CancellationToken caller, CancellationToken ct)
    {
        var (stack, recipe, decision) = (build.Stack, build.Recipe, build.Decision);
        using var live = monitor?.LiveLog(recipe);
        await using var file = new FileStream(build.LogFile, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16);
        using var log = new TeeStream(file, live);
        log.WriteLine($"== cairn build {recipe.Id}: {build.Why}");
        log.WriteLine($"== build key {decision.Key}, platform {decision.Platform} ({stack.Platform}), prefix {build.Layout.PrefixOf(recipe.Name, recipe.Version)}");
        var (paths, rootFs) = await PrepareInputsAsync(build, log, ct).ConfigureAwait(false);
        var (result, checkDuration) = await RunPhasesAsync(build, paths, rootFs, monitor, log, file, ct).ConfigureAwait(false);
        var reports = TestReport.Find(paths.Workspace);
        TestSummary? tests = null;
        if (result is null)
        {
            build.Phase = "check";
            tests = TestReport.Summarize(0, reports, checkDuration);
            log.WriteLine($"== tests: {tests.Passed} passed, {tests.Failed} failed, {tests.Skipped} skipped ({tests.Report})");
            if (tests.Failed > 0)
            {
                result = Failed(recipe, ErrorCode.CheckFailed, $"check: the JUnit reports list {tests.Failed} failed test(s)", decision.Key, time.GetElapsedTime(build.Started), null);
            }
        }

        if (result is not null)
        {
            log.WriteLine($"== FAILED: {result.Reason}; nothing is published");
            await target.ReportFailureAsync(build.Job, result, reports, caller).ConfigureAwait(false);
            return result;
        }

        build.Phase = "publish";
        if (paths.CodeRade is { } codeRade)
        {
            var generated = ModuleFile.Generate(recipe, stack.Platform, paths.Prefix, stack.Graph.DirectDependencies(recipe.Name), decision.Key.ToString());
            foreach (var line in codeRade.Compare(generated)) log.WriteLine($"== {line}");
        }

        log.WriteLine($"== publishing {recipe.Id} ({stack.Platform})");
        log.Flush();
        file.Flush(flushToDisk: false);
        return await PublishAsync(stack, target, build.Job, recipe, decision, paths, build.LogFile, reports, tests!, build.Work, build.Started, build.StartedAt, ct).ConfigureAwait(false);
    }

    /// <summary>The dependencies' products (read-only, at their prefixes), the build environment, and the work directories.</summary>
    private async Task<(BuildPaths Paths, string? RootFs)> PrepareInputsAsync(PackageBuild build, TeeStream log, CancellationToken ct)
    {
        var (stack, recipe, decision, layout, work) = (build.Stack, build.Recipe, build.Decision, build.Layout, build.Work);
        var depsRoot = Path.Combine(work, "deps");
        var depPaths = new List<(Recipe, string)>();
        foreach (var dep in build.Dependencies.Reverse())
        {
            var record = build.Products[dep.Name];
            depPaths.Add((dep, await ProvideDependencyAsync(stack.Options, dep, record, depsRoot, ct).ConfigureAwait(false)));
            log.WriteLine($"== dependency {dep.Id}: product {record.Root.Abbreviated} at {layout.PrefixOf(dep.Name, dep.Version)} (read-only)");
        }

        string? rootFs = null;
        if (decision.Environment is { } env)
        {
            var envRoot = Path.Combine(work, "environment");
            await new Materializer(repository.Trees).MaterializeAsync(env, envRoot, new MaterializeOptions { CacheDirectory = stack.Options.CacheDirectory }, null, ct).ConfigureAwait(false);
            rootFs = Path.Combine(envRoot, env.Platform, env.Name, env.Version);
            log.WriteLine($"== build environment {env.Ref}: {env.Root.Abbreviated}");
        }

        var paths = new BuildPaths(
            Directory.CreateDirectory(Path.Combine(work, "workspace")).FullName,
            Directory.CreateDirectory(Path.Combine(work, "prefix")).FullName,
            decision.SourceFiles, depPaths);
        if (recipe.Layout == RecipeLayout.CodeRade)
        {
            paths = paths with { CodeRade = CodeRade.CodeRadeEnvironment.Prepare(work, paths.Workspace, recipe, layout, depPaths, d => stack.Graph.DirectDependencies(d.Name), rootFs) };
            log.WriteLine($"== layout code-rade: modules ci, deploy{(paths.CodeRade.GccVersion is { } gcc ? $", gcc/{gcc}" : "")}, {depPaths.Count} dependencies' and {recipe.HostModules.Count} host modules on MODULEPATH; the check may install into the prefix");
        }

        return (paths, rootFs);
    }

    /// <summary>Each phase in its own fresh sandbox; the first that fails ends the build, explained from its part of the log.</summary>
    private async Task<(PackageResult? Failed, TimeSpan CheckDuration)> RunPhasesAsync(PackageBuild build, BuildPaths paths, string? rootFs, IBuildMonitor? monitor,
        TeeStream log, FileStream file, CancellationToken ct)
    {
        var (stack, recipe, layout) = (build.Stack, build.Recipe, build.Layout);
        var checkDuration = TimeSpan.Zero;
        foreach (var phase in BuildSteps.PhasesFor(paths))
        {
            build.Phase = phase.ToString().ToLowerInvariant();
            monitor?.Started(recipe, build.Phase);
            log.WriteLine($"== {build.Phase}");
            log.Flush();
            var phaseStart = file.Position;
            var spec = BuildSteps.Create(recipe, phase, layout, paths, stack.Options.Limits, rootFs, stack.Options.SourceDateEpoch);
            var run = await sandbox.RunAsync(spec, log, ct).ConfigureAwait(false);
            log.WriteLine($"== {build.Phase}: {run.Describe()} after {run.Duration.TotalSeconds:0.0} s");
            if (!run.Succeeded)
            {
                log.Flush();
                file.Flush(flushToDisk: false);
                var (code, reason) = BuildFailureHints.Explain(recipe, phase, run.Describe(), BuildFailureHints.ReadFrom(build.LogFile, phaseStart), layout.PrefixOf(recipe.Name, recipe.Version));
                return (Failed(recipe, code, reason, build.Decision.Key, time.GetElapsedTime(build.Started), null), checkDuration);
            }

            if (phase == BuildPhase.Check) checkDuration = run.Duration;
        }

        return (null, checkDuration);
    }

    /// <summary>A failure keeps its log and record under the builds directory; a success leaves no work behind.</summary>
    private PackageResult Finish(PackageBuild build, PackageResult result)
    {
        if (result.Status == PackageStatus.Failed)
        {
            var kept = KeepFailure(build.Stack, build.Recipe, build.Decision.Key, result.Reason, result.Code, build.Work, build.StartedAt);
            _log.LogWarning("{Recipe} failed: {Reason}; log: {Log}", build.Recipe.Id, result.Reason, kept);
            return result with { LogFile = kept };
        }

        DeleteTree(build.Work);
        return result;
    }

    private async Task<PackageResult> PublishAsync(Stack stack, IPublishTarget target, JobTicket job, Recipe recipe, Decision decision, BuildPaths paths, string logFile,
        IReadOnlyList<string> reports, TestSummary tests, string work, long started, DateTimeOffset startedAt, CancellationToken ct)
    {
        var moduleFile = Path.Combine(work, "modulefile");
        var directDeps = stack.Graph.DirectDependencies(recipe.Name);
        await File.WriteAllTextAsync(moduleFile, ModuleFile.Generate(recipe, stack.Platform, paths.Prefix, directDeps, decision.Key.ToString()), ct).ConfigureAwait(false);
        var luaModuleFile = moduleFile + ModuleFile.LuaSuffix;
        await File.WriteAllTextAsync(luaModuleFile, ModuleFile.GenerateLua(recipe, stack.Platform, paths.Prefix, directDeps, decision.Key.ToString()), ct).ConfigureAwait(false);
        var logPath = LogPathInTree(stack.Platform, recipe.Name, recipe.Version);
        var logDir = logPath[..logPath.LastIndexOf('/')];
        var extras = new List<ExtraFile>
        {
            new(ModuleFile.PathInTree(stack.Platform, recipe.Name, recipe.Version), moduleFile),
            new(ModuleFile.LuaPathInTree(stack.Platform, recipe.Name, recipe.Version), luaModuleFile),
            new(logPath, logFile),
        };
        extras.AddRange(reports.Select(r => new ExtraFile($"{logDir}/{TestReport.JunitFolder}/{Path.GetFileName(r)}", r)));
        if (paths.CodeRade is { } codeRade)
        {
            // The modulefiles check-build.sh wrote: kept beside the log for comparison; cairn's own modulefile is the one published.
            extras.AddRange(codeRade.WrittenModulefiles().Select(m => new ExtraFile(CodeRade.CodeRadeEnvironment.KeptPathInTree(stack.Platform, recipe.Name, recipe.Version, m), Path.Combine(codeRade.WrittenModules, m))));
        }

        var published = await target.PublishAsync(job, new ProductRef(recipe.Name, recipe.Version), paths.Prefix, new PublishOptions
        {
            Platform = stack.Platform,
            BuildKey = decision.Key.ToString(),
            Dependencies = [.. directDeps.Select(d => d.Id)],
            Tests = tests,
            PublishedBy = stack.Options.Publisher ?? stack.Options.BuildSite,
            Replace = decision.Existing is not null,
            ReplaceReason = decision.Existing is null ? null : $"rebuilt: build key changed (was {decision.Existing.BuildKey})",
            ExtraFiles = extras,
            Log = logPath,
            Attestations = stack.Options.BuilderKey is null ? null : AttestationsPathInTree(stack.Platform, recipe.Name, recipe.Version),
            Attest = Attestation(stack, recipe, decision, logFile, reports, startedAt),
        }, reports, ct).ConfigureAwait(false);
        _log.LogInformation("published {Recipe} as revision {Revision}", recipe.Id, published.Revision);
        return new PackageResult
        {
            Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.Built, Reason = job.Reason ?? BuildReason(decision),
            BuildKey = decision.Key.ToString(), Product = published.Root, Revision = published.Revision, Job = published.Job, Coordination = published.Detail,
            Replaced = published.Outcome == PublishOutcome.Replaced, Tests = tests, RepositoryLog = logPath,
            Duration = time.GetElapsedTime(started),
        };
    }

    private static PackageResult Failed(Recipe recipe, ErrorCode code, string reason, Digest? key, TimeSpan duration, string? logFile) => new()
    {
        Name = recipe.Name, Version = recipe.Version, Status = PackageStatus.Failed, Reason = reason, Code = ErrorCodes.Name(code),
        BuildKey = key?.ToString(), Duration = duration, LogFile = logFile,
    };

    /// <summary>A failed build's record: REPO/builds/NAME/VERSION/STAMP/{build.json,build.log} (+ its work, if kept).</summary>
    public sealed record FailureRecord(string Name, string Version, string? BuildKey, string Reason, string? Code, string Site, string Platform, DateTimeOffset StartedAt);

    private string KeepFailure(Stack stack, Recipe recipe, Digest key, string reason, string? code, string work, DateTimeOffset startedAt)
    {
        var parent = Path.Combine(stack.Options.BuildsDirectory, recipe.Name, recipe.Version);
        var target = Path.Combine(parent, $"{startedAt:yyyyMMdd'T'HHmmss'Z'}-{key.ToString()[..8]}");
        if (Directory.Exists(target)) target += "-" + Guid.NewGuid().ToString("N")[..6];
        Directory.CreateDirectory(parent);
        Directory.Move(work, target);
        var record = new FailureRecord(recipe.Name, recipe.Version, key.ToString(), reason, code, stack.Options.BuildSite, stack.Platform, startedAt);
        File.WriteAllBytes(Path.Combine(target, "build.json"), CairnJson.SerializeIndented(record, BuildJson.Default.FailureRecord));
        foreach (var old in Directory.GetDirectories(parent).Order(StringComparer.Ordinal).Reverse().Skip(Math.Max(1, stack.Options.FailedRecordsToKeep)))
        {
            DeleteTree(old);
        }

        return Path.Combine(target, "build.log");
    }

    private static void AppendToLog(string logFile, string line)
    {
        try
        {
            File.AppendAllText(logFile, line + "\n");
        }
        catch (IOException)
        {
            // The log is best effort once the build has failed.
        }
    }

    /// <summary>Deletes a build tree; builds may leave read-only directories, which are made writable first.</summary>
    internal static void DeleteTree(string path)
    {
        if (!Directory.Exists(path)) return;
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (UnauthorizedAccessException)
        {
            foreach (var dir in Directory.EnumerateDirectories(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (new DirectoryInfo(dir).LinkTarget is null) File.SetUnixFileMode(dir, File.GetUnixFileMode(dir) | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }

            Directory.Delete(path, recursive: true);
        }
    }
}
