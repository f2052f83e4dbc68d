package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// On Azure, S2b is the same floor as on S3 (pushfloor.go) with the Blob
// API alone: the bytes of each PATCH go as blocks of one block blob, those
// of a chunk staged together (as Berth's azure writer cuts a PATCH whose
// length it knows) and the chunks one after the other; then one Put Block
// List and, the digest being known only now, a server-side copy to the
// blob's key. S2c is that commit and copy alone. Azurite (one Node
// process) spends most of its CPU on each staged block (it reads the block
// back from disk and computes its CRC-64 in JavaScript), so this row is
// what Azurite itself allows on this machine.

// Berth's azure driver defaults: the most blocks a chunk is cut into, and
// the smallest it cuts (storage/driver/azure).
const (
	floorAzureConcurrency = 4
	floorAzureMinBlock    = 4 << 20
)

// chunkBlocks cuts a chunk of n bytes as the azure writer plans it: k =
// min(writeconcurrency, n / 4 MiB) blocks (one at least), k-1 of ceil(n/k)
// bytes and the last the rest.
func chunkBlocks(n int64) []int64 {
	k := max(min(floorAzureConcurrency, n/floorAzureMinBlock), 1)
	size := (n + k - 1) / k
	blocks := make([]int64, k)
	for i := range blocks {
		blocks[i] = min(size, n-int64(i)*size)
	}
	return blocks
}

// floorBlockID is the i-th block's ID: Azure wants every ID of a blob to
// have one length.
func floorBlockID(i int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "floor%010d", i))
}

// rawChunkedPushAzure sends v to st's container through the shaped link
// as S2b does on Azure and returns its throughput in MB/s and the time of
// the commit and copy in seconds.
func rawChunkedPushAzure(ctx context.Context, st *storageRoot, v *variant, chunk int64) (mbps, finish float64, err error) {
	c := st.shapedAzure
	up := c.NewBlockBlobClient(azuriteRoot + "/" + floorUploadKey)
	start := time.Now()
	var ids []string
	size := v.size()
	for off := int64(0); off < size; off += chunk {
		blocks := chunkBlocks(min(chunk, size-off))
		errs := make([]error, len(blocks))
		var wg sync.WaitGroup
		at := off
		for i, n := range blocks {
			id := floorBlockID(len(ids))
			ids = append(ids, id)
			body := io.NewSectionReader(v, at, n)
			at += n
			wg.Go(func() {
				if _, err := up.StageBlock(ctx, id, streaming.NopCloser(body), nil); err != nil {
					errs[i] = fmt.Errorf("floor: block %d: %w", len(ids)-len(blocks)+i, err)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, 0, err
			}
		}
	}
	finishStart := time.Now()
	if _, err := up.CommitBlockList(ctx, ids, nil); err != nil {
		return 0, 0, fmt.Errorf("floor: put block list: %w", err)
	}
	dst := c.NewBlobClient(azuriteRoot + "/" + floorBlobKey)
	if err := copyBlob(ctx, dst, up.URL()); err != nil {
		return 0, 0, err
	}
	end := time.Now()
	props, err := dst.GetProperties(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("floor: stat the copy: %w", err)
	}
	if n := props.ContentLength; n == nil || *n != size {
		return 0, 0, fmt.Errorf("floor: copy holds %v bytes, want %d", n, size)
	}
	return float64(size) / end.Sub(start).Seconds() / mb, end.Sub(finishStart).Seconds(), nil
}

// copyBlob copies src to dst server-side as Berth's Move does, waiting
// while the copy is pending.
func copyBlob(ctx context.Context, dst *blob.Client, src string) error {
	resp, err := dst.StartCopyFromURL(ctx, src, nil)
	if err != nil {
		return fmt.Errorf("floor: copy: %w", err)
	}
	status := resp.CopyStatus
	for status != nil && *status == blob.CopyStatusTypePending {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		props, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return fmt.Errorf("floor: copy status: %w", err)
		}
		status = props.CopyStatus
	}
	if status != nil && *status != blob.CopyStatusTypeSuccess {
		return fmt.Errorf("floor: copy %s", *status)
	}
	return nil
}

// shapedContainer reaches an Azurite's container through endpoint (the
// shaped link) as the servers do.
func shapedContainer(endpoint string) (*container.Client, error) {
	cred, err := container.NewSharedKeyCredential(azuriteAccount, azuriteKey)
	if err != nil {
		return nil, err
	}
	return container.NewClientWithSharedKeyCredential(endpoint+"/"+azuriteAccount+"/"+azuriteContainer, cred, nil)
}
