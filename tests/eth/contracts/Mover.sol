// SPDX-License-Identifier: Apache-2.0
// Moves ETH by internal calls (fan-out, a reverted sub-call inside a successful transaction, self-destruct)
// for chaintrace's Ethereum ingest and tracing tests.
pragma solidity ^0.8.20;

contract Mover {
    receive() external payable {}

    /// Pays each recipient its amount out of msg.value (and the contract's balance) by internal calls.
    function fanOut(address payable[] calldata to, uint256[] calldata amounts) external payable {
        require(to.length == amounts.length, "length");
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: amounts[i]}("");
            require(ok, "send");
        }
    }

    /// Pays `a`, then tries to pay `b` inside a sub-call that reverts: only the payment to `a` happens.
    function payOneFailOne(address payable a, address payable b, uint256 amount) external payable {
        (bool ok, ) = a.call{value: amount}("");
        require(ok, "send a");
        try this.payAndRevert{value: amount}(b) {} catch {}
    }

    function payAndRevert(address payable b) external payable {
        (bool ok, ) = b.call{value: msg.value}("");
        require(ok, "send b");
        revert("undone");
    }

    /// Nested: this contract calls a child Mover, which forwards to `to`.
    function viaChild(Mover child, address payable to) external payable {
        address payable[] memory t = new address payable[](1);
        uint256[] memory v = new uint256[](1);
        t[0] = to;
        v[0] = msg.value;
        child.fanOut{value: msg.value}(t, v);
    }

    function destroy(address payable to) external {
        selfdestruct(to);
    }
}
