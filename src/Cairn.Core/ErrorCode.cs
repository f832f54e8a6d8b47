namespace Cairn.Core;

/// <summary>
/// Stable error codes. The numbers are persisted in scripts and docs: never renumber, only add.
/// The hundreds digit groups them and selects the process exit code (see <see cref="ErrorCodes.ExitCode"/>).
/// </summary>
public enum ErrorCode
{
    Internal = 1,

    // 1xx: usage and configuration
    Usage = 100,
    RepositoryNotFound = 101,
    RepositoryExists = 102,
    InvalidProductReference = 103,
    InvalidPath = 104,
    SourceNotFound = 105,
    UnsupportedRepositoryVersion = 106,
    DestinationNotEmpty = 107,

    // 2xx: repository content
    ProductNotFound = 200,
    ProductExists = 201,
    RevisionNotFound = 202,
    TagNotFound = 203,
    ObjectMissing = 210,
    ObjectCorrupt = 211,
    ObjectSizeMismatch = 212,
    TreeMalformed = 213,
    ManifestMalformed = 214,
    PackMalformed = 215,
    VerifyFailed = 216,
    UnsupportedFileType = 217,

    // 3xx: import of untrusted archives
    ArchiveUnreadable = 300,
    ArchivePathTraversal = 301,
    ArchiveAbsolutePath = 302,
    ArchiveBadName = 303,
    ArchiveSymlinkEscape = 304,
    ArchiveThroughSymlink = 305,
    ArchiveHardlinkEscape = 306,
    ArchiveDuplicateEntry = 307,
    ArchiveSpecialFile = 308,
    ArchiveTooManyEntries = 309,
    ArchiveTooDeep = 310,
    ArchiveTooLarge = 311,
    ArchiveCompressionRatio = 312,
    ArchiveLayout = 313,

    // 4xx: I/O and concurrency
    IoError = 400,
    DurabilityFailure = 401,
    NoSpace = 402,
    LockTimeout = 403,
    ConcurrentUpdate = 404,

    // 5xx: the build sandbox (docs/errors-sandbox-build.md)
    SandboxUnavailable = 500,
    SandboxSpecInvalid = 501,
    SandboxStartFailed = 502,
    SandboxProcessLimitUnavailable = 503,

    // 6xx: recipes and builds (docs/errors-sandbox-build.md)
    RecipeSyntax = 600,
    RecipeInvalid = 601,
    RecipeFileMissing = 602,
    RecipeDependencyMissing = 603,
    RecipeCycle = 604,
    RecipeDuplicate = 605,
    SourceDigestMismatch = 606,
    RecipeSourceMissing = 607,
    DependencyProductMissing = 608,
    RecipeVariableUnknown = 609,
    BuildProductConflict = 610,
    BuildFailed = 611,
    CheckFailed = 612,
    BuildBlocked = 613,
    TestReportInvalid = 614,
    BuildEnvironmentMissing = 615,
    DeploymentPathInvalid = 616,
    SeccompArchitectureUnsupported = 617,

    // 630-639: where a build's dependencies come from (--deps-from; docs/recipes.md)
    DepsSourceInvalid = 630,
    DepsProductMissing = 631,
    DepsTarballConflict = 632,
    DepsMountInvalid = 633,

    // 640-649: CODE-RADE compatibility (layout: code-rade, cairn recipe import; docs/recipes.md)
    SourceDownloadRefused = 640,
    ModulesUnavailable = 641,
    RecipeImportIncomplete = 642,

    // 7xx: remote repositories and distribution (docs/errors.md)
    RemoteUnavailable = 700,
    RemoteReadOnly = 701,
    RemoteInvalidUrl = 702,
    RemoteContentRejected = 703,
    RemoteNoPackList = 704,
    ServeFailed = 705,
    RemoteNoValidHead = 706,
    RemoteDeadlineExceeded = 707,
    RemoteSettingInvalid = 708,

    // 8xx: the read-only mount (docs/errors.md)
    MountUnavailable = 800,
    MountPermissionDenied = 801,
    MountPointInvalid = 802,
    MountFailed = 803,
    NotMounted = 804,
    MountReadFailed = 805,
    UnmountFailed = 806,
    MountHelperMissing = 807,
    MountHelperFailed = 808,

    // 9xx: coordination between sites: claims, leases, site tokens, coherence (docs/coordination.md)
    SiteUnknown = 900,
    TokenInvalid = 901,
    TokenRevoked = 902,
    TokenOutOfScope = 903,
    CapabilityMismatch = 904,
    ClaimLost = 905,
    LeaseLost = 906,
    PromotionRefused = 907,
    CoordinationSchemaTooNew = 908,
    CoordinationUnavailable = 909,

    // 910-924: the gateway (docs/format/gateway-api.md)
    GatewayObjectMismatch = 910,
    GatewayObjectTooLarge = 911,
    GatewayObjectsMissing = 912,
    GatewayLeaseBusy = 913,
    GatewayCommitInvalid = 914,
    GatewayUnavailable = 915,
    GatewayProtocol = 916,
    GatewayDatabaseUrlInvalid = 917,

    // 935-944: cairn challenge, rebuilding a published product to check it is reproducible (docs/recipes.md)
    ChallengeRecipesChanged = 935,
    ChallengeNoBuildKey = 936,
    ChallengeRecipeMissing = 937,
    ChallengeRebuildFailed = 938,

    // 925-934: a site building through the gateway (cairn build --gateway; docs/coordination.md)
    SiteOfferInvalid = 925,
    SiteTokenFileInvalid = 926,

    // 950-959: the web dashboard (docs/dashboard.md): refusals answered as HTTP errors, never process exits
    DashboardAntiForgeryRejected = 950,
    DashboardPageNotFound = 951,
    OperatorSignInRequired = 952,
    OperatorActionsDisabled = 953,

    // 10xx: trust: signed manifests, keys, revocation (docs/security.md)
    TrustSignatureInvalid = 1000,
    TrustWrongRepository = 1001,
    TrustManifestExpired = 1002,
    TrustRollback = 1003,
    TrustEquivocation = 1004,
    TrustManifestTooLarge = 1005,
    TrustKeyNotTrusted = 1006,
    TrustKeyRevoked = 1007,
    TrustCertificateExpired = 1008,
    TrustSignatureMissing = 1009,
    TrustKeyInvalid = 1010,
    TrustManifestMismatch = 1011,

    // 1100-1119: storage backends and mirrors
    StorageInvalidUrl = 1100,
    StorageUnavailable = 1101,

    // 1200-1249: provenance: signed in-toto/SLSA statements per product (docs/format/provenance.md)
    ProvenanceMissing = 1200,
    ProvenanceMalformed = 1201,
    ProvenanceSignatureInvalid = 1202,
    ProvenanceBuilderUntrusted = 1203,
    ProvenanceSubjectMismatch = 1204,
    ProvenanceDependencyMismatch = 1205,
    ProvenanceNotPassed = 1206,
    ProvenancePolicyInvalid = 1207,
    ProvenanceSiteKeyMissing = 1208,

    // 1300-1349: the publication log (transparency)
    LogCheckpointInvalid = 1300,
    LogInconsistent = 1301,
    LogRollback = 1302,
    LogRevisionNotIncluded = 1303,
    LogTileInvalid = 1304,
    LogMissing = 1305,
    LogWitnessPolicy = 1306,
    LogDamaged = 1307,
    LogWitnessRefused = 1308,
}

public static class ErrorCodes
{
    public static string Name(ErrorCode code) => $"CAIRN-E{(int)code:D4}";

    /// <summary>
    /// Process exit code (docs/errors.md): 0 success, 1 internal, 2 usage or set-up, 3 not found or conflict,
    /// 4 integrity, 5 refused input, 6 I/O, 7 a package failed to build or pass its check.
    /// </summary>
    public static int ExitCode(ErrorCode code) => code switch
    {
        ErrorCode.Internal => 1,
        >= ErrorCode.Usage and < ErrorCode.ProductNotFound => 2,
        ErrorCode.ProductNotFound or ErrorCode.ProductExists or ErrorCode.RevisionNotFound or ErrorCode.TagNotFound => 3,
        >= ErrorCode.ObjectMissing and < ErrorCode.ArchiveUnreadable => 4,
        >= ErrorCode.ArchiveUnreadable and < ErrorCode.IoError => 5,
        >= ErrorCode.IoError and < ErrorCode.SandboxUnavailable => 6,
        ErrorCode.SandboxUnavailable or ErrorCode.SandboxSpecInvalid or ErrorCode.SandboxProcessLimitUnavailable => 2,
        ErrorCode.SandboxStartFailed => 6,
        ErrorCode.SeccompArchitectureUnsupported => 2,
        ErrorCode.BuildFailed or ErrorCode.CheckFailed or ErrorCode.BuildBlocked => BuildFailedExitCode,
        ErrorCode.DepsSourceInvalid => 2,
        ErrorCode.DepsProductMissing => 3,
        ErrorCode.SourceDownloadRefused => BuildFailedExitCode,
        ErrorCode.ModulesUnavailable => 2,
        >= ErrorCode.RecipeSyntax and < (ErrorCode)700 => 5,
        ErrorCode.RemoteReadOnly or ErrorCode.RemoteInvalidUrl or ErrorCode.RemoteSettingInvalid => 2,
        ErrorCode.RemoteContentRejected => 4,
        >= ErrorCode.RemoteUnavailable and < (ErrorCode)800 => 6,
        ErrorCode.MountUnavailable or ErrorCode.MountPermissionDenied or ErrorCode.MountPointInvalid => 2,
        ErrorCode.NotMounted => 3,
        ErrorCode.MountHelperMissing => 2,
        >= ErrorCode.MountFailed and < (ErrorCode)900 => 6,
        ErrorCode.SiteUnknown or ErrorCode.ClaimLost or ErrorCode.LeaseLost or ErrorCode.PromotionRefused => 3,
        ErrorCode.CoordinationUnavailable => 6,
        ErrorCode.GatewayObjectMismatch or ErrorCode.GatewayObjectsMissing => 4,
        ErrorCode.GatewayObjectTooLarge or ErrorCode.GatewayCommitInvalid => 5,
        ErrorCode.GatewayLeaseBusy => 3,
        ErrorCode.GatewayUnavailable or ErrorCode.GatewayProtocol => 6,
        ErrorCode.ChallengeRecipesChanged or ErrorCode.ChallengeNoBuildKey => 3,
        ErrorCode.ChallengeRebuildFailed => BuildFailedExitCode,
        >= ErrorCode.SiteUnknown and < (ErrorCode)1000 => 2,
        ErrorCode.StorageInvalidUrl => 2,
        >= ErrorCode.StorageUnavailable and < (ErrorCode)1120 => 6,
        ErrorCode.TrustKeyInvalid => 2,
        >= ErrorCode.TrustSignatureInvalid and < (ErrorCode)1100 => 4,
        ErrorCode.ProvenancePolicyInvalid or ErrorCode.ProvenanceSiteKeyMissing => 2,
        >= ErrorCode.ProvenanceMissing and < (ErrorCode)1250 => 4,

        >= ErrorCode.LogCheckpointInvalid and < (ErrorCode)1350 => 4,
        _ => 7,
    };

    /// <summary>Exit code of a build in which at least one package failed its build or check.</summary>
    public const int BuildFailedExitCode = 7;

    /// <summary>Exit code of 'cairn challenge' when the rebuild differs from the published product.</summary>
    public const int NotReproducibleExitCode = 8;
}
