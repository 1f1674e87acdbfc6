// SPDX-License-Identifier: Apache-2.0
// A toy constant-rate exchange pool (token <-> token, ETH -> token) so tests can check that tracing carries
// taint across a swap and records the conversion.
pragma solidity ^0.8.20;

interface IToken {
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
}

contract Pool {
    /// Sell `amountIn` of `tokenIn` (pre-approved) for `amountIn * num / den` of `tokenOut`.
    function swap(IToken tokenIn, IToken tokenOut, uint256 amountIn, uint256 num, uint256 den) external {
        require(tokenIn.transferFrom(msg.sender, address(this), amountIn), "in");
        require(tokenOut.transfer(msg.sender, amountIn * num / den), "out");
    }

    /// Buy `tokenOut` with ETH at `num / den` tokens per wei.
    function buy(IToken tokenOut, uint256 num, uint256 den) external payable {
        require(tokenOut.transfer(msg.sender, msg.value * num / den), "out");
    }

    /// Sell `amountIn` of `tokenIn` (pre-approved) for ETH at `num / den` wei per token unit.
    function sell(IToken tokenIn, uint256 amountIn, uint256 num, uint256 den) external {
        require(tokenIn.transferFrom(msg.sender, address(this), amountIn), "in");
        (bool ok, ) = payable(msg.sender).call{value: amountIn * num / den}("");
        require(ok, "pay");
    }

    receive() external payable {}
}
