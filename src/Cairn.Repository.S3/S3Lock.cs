using System.Globalization;
using Cairn.Core;

namespace Cairn.Repository.S3;

/// <summary>
/// A lease in a bucket that works without conditional writes: each holder writes its own marker
/// (locks/NAME/KIND-EXPIRYMS-TOKEN), then lists the folder; if a conflicting unexpired marker is there it deletes
/// its own and backs off. Both contenders write before they look, so with S3's strong read-after-write and
/// list consistency two conflicting holders can never both proceed (at worst both back off and retry).
/// The lease lasts <see cref="Ttl"/> and is renewed while held; a holder stalled for longer than that (or a
/// client clock more than that off) loses it. See docs/adr/0007-s3-backend.md.
/// </summary>
internal sealed class S3Lock : IAsyncDisposable
{
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(60);

    private readonly S3Calls _s3;
    private readonly string _folder;
    private readonly string _kind;
    private readonly string _token = Guid.NewGuid().ToString("N");
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private string _marker = "";
    private Task _renewal = Task.CompletedTask;

    private S3Lock(S3Calls s3, string folder, bool exclusive, TimeProvider time)
    {
        _s3 = s3;
        _folder = folder;
        _kind = exclusive ? "x" : "s";
        _time = time;
    }

    public static async Task<IAsyncDisposable> AcquireAsync(S3Calls s3, string name, bool exclusive, TimeSpan timeout, TimeProvider time, CancellationToken ct)
    {
        var l = new S3Lock(s3, $"locks/{name}/", exclusive, time);
        var deadline = time.GetUtcNow() + timeout;
        while (true)
        {
            await l.WriteMarkerAsync(ct).ConfigureAwait(false);
            if (!await l.ConflictsAsync(ct).ConfigureAwait(false))
            {
                l._renewal = l.RenewAsync();
                return l;
            }

            await s3.DeleteAsync(l._marker, ct).ConfigureAwait(false);
            if (time.GetUtcNow() > deadline)
            {
                throw new CairnException(ErrorCode.LockTimeout, $"the {name} lock of {s3.Location.Display} is held by another process",
                    "wait for the other publish or gc to finish, or raise --lock-timeout; a crashed holder's lease expires after 60 s");
            }

            // Random backoff so two contenders that saw each other do not retry in lockstep.
            await Task.Delay(TimeSpan.FromMilliseconds(50 + Random.Shared.Next(250)), time, ct).ConfigureAwait(false);
        }
    }

    private async Task WriteMarkerAsync(CancellationToken ct)
    {
        var expiry = (_time.GetUtcNow() + Ttl).ToUnixTimeMilliseconds();
        var marker = $"{_folder}{_kind}-{expiry.ToString("D15", CultureInfo.InvariantCulture)}-{_token}";
        await _s3.PutAsync(marker, Array.Empty<byte>(), ct).ConfigureAwait(false);
        var old = _marker;
        _marker = marker;
        // Renewal writes the new marker before deleting the old, so the holder is never unmarked.
        if (old.Length > 0 && old != marker) await _s3.DeleteAsync(old, ct).ConfigureAwait(false);
    }

    private async Task<bool> ConflictsAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var key in await _s3.ListAsync(_folder, ct).ConfigureAwait(false))
        {
            if (key == _marker) continue;
            var parts = key[_folder.Length..].Split('-');
            if (parts.Length != 3 || !long.TryParse(parts[1], CultureInfo.InvariantCulture, out var expiry)) continue;
            if (expiry < now)
            {
                // A crashed holder's marker: clear it so the folder does not grow.
                await _s3.DeleteAsync(key, ct).ConfigureAwait(false);
                continue;
            }

            if (parts[0] == "x" || _kind == "x") return true;
        }

        return false;
    }

    private async Task RenewAsync()
    {
        try
        {
            while (true)
            {
                await Task.Delay(Ttl / 3, _time, _stop.Token).ConfigureAwait(false);
                await WriteMarkerAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (CairnException)
        {
            // Storage unreachable: the lease will expire; the commit itself fails on the same outage.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _renewal.ConfigureAwait(false);
        _stop.Dispose();
        try
        {
            await _s3.DeleteAsync(_marker, CancellationToken.None).ConfigureAwait(false);
        }
        catch (CairnException)
        {
            // Left behind, it expires by itself.
        }
    }
}
